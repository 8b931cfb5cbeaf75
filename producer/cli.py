"""The producer CLI: sources of posts to the `tweets` topic.

    python -m producer.cli replay FILE.jsonl
"""

from __future__ import annotations

import time
from pathlib import Path

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from .config import ProducerSettings
from .post import Rejected, post_from_json_line
from .writer import PostWriter, RejectLog

app = typer.Typer(add_completion=False, no_args_is_help=True, help="Send posts to Kafka (Avro, schema registry).")
console = Console(stderr=True)


@app.callback()
def main() -> None:
    """Send posts to Kafka (Avro, schema registry)."""


@app.command()
def replay(
    file: Path = typer.Argument(..., exists=True, dir_okay=False, readable=True,
                                help="JSON lines, one X API v2 tweet object per line"),
) -> None:
    """Send every post of a replay file as fast as the broker takes it; exit when all are delivered."""
    settings = ProducerSettings()
    writer = PostWriter(settings)
    rejects = RejectLog(Path(settings.rejects_dir) / f"{file.stem}.{time.strftime('%Y%m%dT%H%M%S')}.rejects.jsonl")
    t0 = time.monotonic()
    size = file.stat().st_size
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=console, transient=True) as progress, open(file, "rb") as f:
        task = progress.add_task(f"replay {file.name} (bytes)", total=size)
        for line_no, raw in enumerate(f, start=1):
            text = raw.decode("utf-8", errors="replace").rstrip("\r\n")
            if not text.strip():
                continue
            try:
                post = post_from_json_line(text, source="replay", max_text_bytes=settings.max_text_bytes)
            except Rejected as e:
                rejects.add(str(file), line_no, str(e), text)
                if rejects.count <= 10:
                    progress.console.print(f"[yellow]rejected[/] {file.name} line {line_no}: {e}")
                continue
            writer.send(post)
            if line_no % 1000 == 0:
                progress.update(task, completed=f.tell())
        progress.update(task, completed=size)
    pending = writer.flush()
    rejects.close()
    elapsed = time.monotonic() - t0
    s = writer.stats
    rate = s.delivered / elapsed if elapsed > 0 else 0.0
    console.print(f"sent {s.delivered} posts to '{settings.topic}' in {elapsed:.2f}s ({rate:,.0f} posts/s); "
                  f"rejected {rejects.count} lines")
    if rejects.count:
        console.print(f"rejected lines kept in {rejects.path}")
    if s.failed or pending:
        for err in s.errors:
            console.print(f"[red]delivery failed:[/] {err}")
        console.print(f"[red]{s.failed} posts failed delivery, {pending} still pending[/]")
        raise typer.Exit(1)


if __name__ == "__main__":
    app()
