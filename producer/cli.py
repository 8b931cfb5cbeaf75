"""The producer CLI: sources of posts to the `tweets` topic.

    python -m producer.cli replay FILE.jsonl
"""

from __future__ import annotations

import json

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
    _report(writer, settings.topic, time.monotonic() - t0, pending, rejects)


def _report(writer: PostWriter, topic: str, elapsed: float, pending: int, rejects: RejectLog | None = None) -> None:
    """Print what was delivered (and rejected); exit 1 if any delivery failed."""
    s = writer.stats
    rate = s.delivered / elapsed if elapsed > 0 else 0.0
    line = f"sent {s.delivered} posts to '{topic}' in {elapsed:.2f}s ({rate:,.0f} posts/s)"
    console.print(line + (f"; rejected {rejects.count} lines" if rejects is not None else ""))
    if rejects is not None and rejects.count:
        console.print(f"rejected lines kept in {rejects.path}")
    if s.failed or pending:
        for err in s.errors:
            console.print(f"[red]delivery failed:[/] {err}")
        console.print(f"[red]{s.failed} posts failed delivery, {pending} still pending[/]")
        raise typer.Exit(1)


@app.command()
def synthetic(
    count: int = typer.Option(10_000, min=1, help="how many posts"),
    seed: int = typer.Option(42, help="same seed, same posts"),
    out: Path = typer.Option(None, help="write X API v2 JSON lines to this file instead of Kafka"),
) -> None:
    """Generate realistic posts (French and English, Zipf-like hashtags, bursts)."""
    from datetime import datetime, timezone

    from .sources.synthetic import synthetic_posts

    posts = synthetic_posts(count, seed=seed)
    if out is not None:
        with open(out, "w", encoding="utf-8") as f:
            for p in posts:
                created = datetime.fromtimestamp(p.created_at / 1000, timezone.utc).isoformat(timespec="milliseconds")
                f.write(json.dumps({"id": p.id, "text": p.text, "created_at": created.replace("+00:00", "Z"),
                                    "author_id": p.author_id, "lang": p.lang}, ensure_ascii=False) + "\n")
        console.print(f"wrote {count} posts to {out}")
        return
    settings = ProducerSettings()
    writer = PostWriter(settings)
    t0 = time.monotonic()
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=console, transient=True) as progress:
        task = progress.add_task("synthetic posts", total=count)
        for i, post in enumerate(posts, start=1):
            writer.send(post)
            if i % 1000 == 0:
                progress.update(task, completed=i)
    pending = writer.flush()
    _report(writer, settings.topic, time.monotonic() - t0, pending)


if __name__ == "__main__":
    app()
