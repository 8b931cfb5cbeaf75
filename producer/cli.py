"""The producer CLI: every source of posts, one Avro record, one topic.

python -m producer.cli replay FILE.jsonl [--speed 10]
python -m producer.cli synthetic --count 100000 [--rate 500] [--out FILE.jsonl]
python -m producer.cli bluesky [-k covid -k vaccin] [-l fr]
python -m producer.cli x-stream | x-search      (X_BEARER_TOKEN in the environment)
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.logging import RichHandler

from .avro import SchemaRegistrationError
from .config import ProducerSettings
from .run import Source, StopFlag, rejects_path, report, run
from .writer import PostWriter, RejectLog

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    rich_markup_mode=None,
    help="Send posts to Kafka (Avro, schema registry) from X, Bluesky, replay files or a generator. "
    "Settings: options below, or PRODUCER_* environment variables (see producer/README.md).",
)
console = Console(stderr=True, soft_wrap=True)  # no wrapping: report lines stay whole for scripts

Topic = Annotated[str | None, typer.Option(help="Kafka topic [env PRODUCER_TOPIC; default tweets]")]
MetricsPort = Annotated[
    int | None,
    typer.Option(
        help="Prometheus endpoint port on 127.0.0.1; 0 any free port, -1 none [env PRODUCER_METRICS_PORT; default 9108]"
    ),
]
Keywords = Annotated[
    list[str] | None,
    typer.Option(
        "--keyword",
        "-k",
        help="keep posts with this keyword (repeat; default: the original project's: "
        "covid, vaccin, COVID-19, corona virus) [env PRODUCER_KEYWORDS]",
    ),
]
Languages = Annotated[
    list[str] | None,
    typer.Option("--lang", "-l", help="keep posts in this language (repeat; default fr) [env PRODUCER_LANGUAGES]"),
]
MaxPosts = Annotated[int | None, typer.Option(min=1, help="stop after this many posts (default: until Ctrl-C)")]
Duration = Annotated[float | None, typer.Option(min=0.1, help="stop after this many seconds")]


@app.callback()
def main() -> None:
    """Send posts to Kafka (Avro, schema registry)."""


def _settings(**overrides: object) -> ProducerSettings:
    settings = ProducerSettings(**{k: v for k, v in overrides.items() if v is not None and v != []})
    _setup_logging()
    return settings


def _setup_logging() -> None:
    root = logging.getLogger()
    if root.handlers:
        return
    if console.is_terminal:
        handler: logging.Handler = RichHandler(console=console, show_path=False, rich_tracebacks=False)
        handler.setFormatter(logging.Formatter("%(message)s"))
    else:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s", "%H:%M:%S"))
    root.addHandler(handler)
    root.setLevel(logging.WARNING)
    logging.getLogger("producer").setLevel(logging.INFO)


def _run(source: Source, settings: ProducerSettings, rejects_stem: str, **kw: object) -> None:
    try:
        writer = PostWriter(settings)
    except SchemaRegistrationError as e:
        console.print(f"[red]schema registration failed:[/] {e}", highlight=False)
        raise typer.Exit(2) from None
    rejects = RejectLog(rejects_path(settings, rejects_stem), settings.reject_preview_bytes)
    try:
        result = run(source, settings, console=console, rejects=rejects, writer=writer, stop=StopFlag(), **kw)
    except KeyboardInterrupt:
        console.print("interrupted: posts in flight may be lost")
        raise typer.Exit(130) from None
    code = report(console, settings.topic, result, source.reject_unit)
    if code:
        raise typer.Exit(code)


@app.command()
def replay(
    file: Path = typer.Argument(
        ..., exists=True, dir_okay=False, readable=True, help="JSON lines, one X API v2 tweet object per line"
    ),
    speed: Annotated[
        float | None,
        typer.Option(
            min=0, help="replay at the original pace (by created_at) times this factor; default: as fast as possible"
        ),
    ] = None,
    topic: Topic = None,
    metrics_port: MetricsPort = None,
) -> None:
    """Send every post of a replay file; exit when all are delivered. Bad lines are counted and kept."""
    from .sources.replay import ReplaySource

    settings = _settings(topic=topic, metrics_port=metrics_port)
    source = ReplaySource(
        file, speed=speed, max_text_bytes=settings.max_text_bytes, max_line_bytes=settings.max_line_bytes
    )
    _run(source, settings, file.stem)


def _parse_start(value: str) -> datetime:
    if value == "now":
        return datetime.now(UTC)
    try:
        start = datetime.fromisoformat(value)
    except ValueError:
        raise typer.BadParameter(f"not an ISO 8601 time or 'now': {value}") from None
    return start if start.tzinfo else start.replace(tzinfo=UTC)


@app.command()
def synthetic(
    count: int = typer.Option(10_000, min=0, help="how many posts; 0 for no end"),
    seed: int = typer.Option(42, help="same seed, same posts"),
    rate: Annotated[
        float | None, typer.Option(min=0.001, help="posts per second (default: as fast as possible)")
    ] = None,
    start: str = typer.Option("2021-03-01T08:00:00Z", help="event time of the first post (ISO 8601, or 'now')"),
    out: Path = typer.Option(None, help="write X API v2 JSON lines to this file instead of Kafka"),
    topic: Topic = None,
    metrics_port: MetricsPort = None,
) -> None:
    """Generate realistic posts (French and English, Zipf-like hashtags, bursts)."""
    from .sources.synthetic import SyntheticSource, synthetic_posts

    if out is not None:
        if not count:
            raise typer.BadParameter("--out needs a --count", param_hint="--count")
        posts = synthetic_posts(
            count, seed=seed, start=_parse_start(start), posts_per_minute=rate * 60 if rate else 600
        )
        with open(out, "w", encoding="utf-8") as f:
            for p in posts:
                created = datetime.fromtimestamp(p.created_at / 1000, UTC).isoformat(timespec="milliseconds")
                f.write(
                    json.dumps(
                        {
                            "id": p.id,
                            "text": p.text,
                            "created_at": created.replace("+00:00", "Z"),
                            "author_id": p.author_id,
                            "lang": p.lang,
                        },
                        ensure_ascii=False,
                    )
                    + "\n"
                )
        console.print(f"wrote {count} posts to {out}")
        return
    settings = _settings(topic=topic, metrics_port=metrics_port)
    _run(SyntheticSource(count or None, seed=seed, rate=rate, start=_parse_start(start)), settings, "synthetic")


@app.command()
def bluesky(
    keyword: Keywords = None,
    lang: Languages = None,
    url: Annotated[
        str | None,
        typer.Option(
            help="Jetstream websocket [env PRODUCER_BLUESKY_URL; default wss://jetstream2.us-east.bsky.network/subscribe]"
        ),
    ] = None,
    max_posts: MaxPosts = None,
    duration: Duration = None,
    topic: Topic = None,
    metrics_port: MetricsPort = None,
) -> None:
    """Live Bluesky posts from the public Jetstream websocket (no account), filtered by keywords and languages."""
    from .sources.bluesky import BlueskySource

    settings = _settings(topic=topic, metrics_port=metrics_port, keywords=keyword, languages=lang, bluesky_url=url)
    _run(BlueskySource(settings), settings, "bluesky", max_posts=max_posts, duration=duration)


def _x_source(kind: str, settings: ProducerSettings) -> Source:
    from .sources.live import SourceError
    from .sources.x import XSearchSource, XStreamSource

    try:
        return XStreamSource(settings) if kind == "stream" else XSearchSource(settings)
    except SourceError as e:
        console.print(f"[red]{e}[/]", highlight=False)
        raise typer.Exit(2) from None


@app.command("x-stream")
def x_stream(
    keyword: Keywords = None,
    lang: Languages = None,
    max_posts: MaxPosts = None,
    duration: Duration = None,
    topic: Topic = None,
    metrics_port: MetricsPort = None,
) -> None:
    """Live posts from the X API v2 filtered stream (needs an access tier with it; bearer token in X_BEARER_TOKEN).

    The stream's rules are made from the keywords and languages, and synced: rules tagged
    'tweetstream' that are no longer wanted are deleted, missing ones added, others left alone."""
    settings = _settings(topic=topic, metrics_port=metrics_port, keywords=keyword, languages=lang)
    _run(_x_source("stream", settings), settings, "x-stream", max_posts=max_posts, duration=duration)


@app.command("x-search")
def x_search(
    keyword: Keywords = None,
    lang: Languages = None,
    interval: Annotated[
        float | None, typer.Option(min=1, help="seconds between polls [env PRODUCER_X_POLL_INTERVAL_S; default 30]")
    ] = None,
    max_posts: MaxPosts = None,
    duration: Duration = None,
    topic: Topic = None,
    metrics_port: MetricsPort = None,
) -> None:
    """Posts from X API v2 recent search, polled (for access tiers without the stream; X_BEARER_TOKEN)."""
    settings = _settings(
        topic=topic, metrics_port=metrics_port, keywords=keyword, languages=lang, x_poll_interval_s=interval
    )
    _run(_x_source("search", settings), settings, "x-search", max_posts=max_posts, duration=duration)


if __name__ == "__main__":
    app()
