"""Producer throughput into the local broker: replay and synthetic, posts per second.

    .venv/bin/python bench/producer_bench.py [--count 300000] [--repeat 3]

Each run is the real CLI (one process) sending to a topic of its own
(`producer_test_bench_<random>`, 2 partitions like `tweets`, deleted at the end),
with the producer's settings as they are (idempotent, acks=all, lz4). The rate
is the CLI's own: posts acknowledged by the broker / time from the first post
to the last acknowledgement (start-up and schema registration excluded). The
setup is printed beside the numbers: the machine is shared with the stack's
JVMs, so the load average matters. Needs the stack (Kafka, registry) running.
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from confluent_kafka import libversion, version  # noqa: E402
from confluent_kafka.admin import AdminClient, NewTopic  # noqa: E402
from confluent_kafka.schema_registry import SchemaRegistryClient  # noqa: E402

from producer.config import ProducerSettings  # noqa: E402
from producer.writer import producer_config  # noqa: E402

TARGET = 50_000


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "?"


def load() -> str:
    try:
        return " ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "?"


def run(args: list[str], env: dict) -> tuple[int, float, float]:
    """(posts, seconds, posts/s) from the CLI's report line."""
    out = subprocess.run(
        [sys.executable, "-m", "producer.cli", *args], cwd=REPO, env=env, capture_output=True, text=True, timeout=600
    )
    if out.returncode != 0:
        sys.exit(f"producer failed ({out.returncode}):\n{out.stderr}")
    m = re.search(r"sent (\d+) posts to '[^']+' in ([\d.]+)s \(([\d,]+) posts/s\)", " ".join(out.stderr.split()))
    return int(m.group(1)), float(m.group(2)), float(m.group(3).replace(",", ""))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=300_000, help="posts per run")
    parser.add_argument("--repeat", type=int, default=3, help="runs per source")
    args = parser.parse_args()

    settings = ProducerSettings()
    topic = f"producer_test_bench_{uuid.uuid4().hex[:8]}"
    admin = AdminClient({"bootstrap.servers": settings.bootstrap_servers})
    admin.create_topics([NewTopic(topic, 2, 1)])[topic].result(15)
    env = {k: v for k, v in os.environ.items() if not k.startswith("PRODUCER_")}
    env.update(PRODUCER_TOPIC=topic, PRODUCER_METRICS_PORT="-1", PRODUCER_LOG_INTERVAL_S="0")
    conf = producer_config(settings)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            replay_file = Path(tmp) / "bench.jsonl"
            subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "producer.cli",
                    "synthetic",
                    "--count",
                    str(args.count),
                    "--seed",
                    "1",
                    "--out",
                    str(replay_file),
                ],
                cwd=REPO,
                env=env,
                check=True,
                capture_output=True,
            )
            size = replay_file.stat().st_size
            print("setup")
            print(f"  machine     {cpu_model()}, {os.cpu_count()} cores, {platform.system()} {platform.release()}")
            print(
                f"  python      {platform.python_version()}, confluent-kafka {version()}, librdkafka {libversion()[0]}"
            )
            print(
                f"  broker      {settings.bootstrap_servers} (local stack, shared with its JVMs), "
                f"topic {topic}: 2 partitions, replication 1"
            )
            print(
                "  producer    one process (the CLI); "
                + ", ".join(
                    f"{k}={conf[k]}"
                    for k in ("enable.idempotence", "acks", "compression.type", "linger.ms", "batch.size")
                )
            )
            print(
                "  record      Avro (schemas/post.avsc), Confluent framing, key = post id; "
                f"replay file {args.count:,} lines, {size / args.count:.0f} bytes a line"
            )
            print(f"  runs        {args.repeat} per source, {args.count:,} posts each")
            print()
            print(f"{'source':<10} {'run':>3} {'posts':>9} {'seconds':>8} {'posts/s':>9}   load average (1, 5, 15 min)")
            best = {}
            for source, cli in (
                ("replay", ["replay", str(replay_file)]),
                ("synthetic", ["synthetic", "--count", str(args.count), "--seed", "2"]),
            ):
                rates = []
                for i in range(1, args.repeat + 1):
                    before = load()
                    posts, seconds, rate = run(cli, env)
                    rates.append(rate)
                    print(f"{source:<10} {i:>3} {posts:>9,} {seconds:>8.2f} {rate:>9,.0f}   {before}")
                best[source] = (max(rates), statistics.median(rates))
            print()
            for source, (top, median) in best.items():
                verdict = "meets" if median >= TARGET else "below"
                print(
                    f"{source:<10} best {top:>9,.0f} posts/s, median {median:>9,.0f} posts/s  "
                    f"({verdict} the {TARGET:,} posts/s target)"
                )
    finally:
        admin.delete_topics([topic])[topic].result(15)
        registry = SchemaRegistryClient({"url": settings.registry_url, "timeout": 30})
        for permanent in (False, True):
            try:
                registry.delete_subject(f"{topic}-value", permanent=permanent)
            except Exception:  # noqa: BLE001
                pass


if __name__ == "__main__":
    main()
