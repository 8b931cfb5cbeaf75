"""Benchmark: /api/hashtags latency under a constant request rate on loopback.

    .venv/bin/python -m bench.api_latency [--rate 1000 --rate 2000] [--seconds 20]

The load tool is vegeta (built from the Go module proxy into .stack/go the
first time). Prints p50/p99 and throughput for /api/hashtags, and for /healthz
(one trivial query) as the baseline of the same run. It asserts nothing.
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import subprocess
import time
from pathlib import Path

import httpx
import typer

REPO = Path(__file__).resolve().parent.parent
GOPATH = REPO / ".stack" / "go"
VEGETA = GOPATH / "bin" / "vegeta"
API = "http://127.0.0.1:8000"


def vegeta() -> Path:
    if not VEGETA.exists():
        if not shutil.which("go"):
            raise SystemExit("the load tool vegeta is built with Go: install Go first (apt-get install golang)")
        print("building vegeta from the Go module proxy (once)...")
        subprocess.run(
            ["go", "install", "github.com/tsenart/vegeta/v12@v12.12.0"],
            check=True,
            env=os.environ | {"GOPATH": str(GOPATH), "GOFLAGS": "-modcacherw"},
        )
    return VEGETA


def wait_idle(timeout: float = 180) -> None:
    """Until the API answers /healthz in under 20 ms ten times in a row, each on a
    new connection (so that every worker process answers some): a rate past an
    endpoint's ceiling leaves a backlog that would slow the next run."""
    deadline, calm = time.monotonic() + timeout, 0
    # one client (a new one per request takes longer than the answer), no kept connection
    client = httpx.Client(timeout=10, limits=httpx.Limits(max_keepalive_connections=0))
    while calm < 10:
        if time.monotonic() > deadline:
            raise SystemExit(f"the API is still busy {timeout:.0f} s after the last run")
        t0 = time.perf_counter()
        try:
            fast = client.get(f"{API}/healthz").status_code == 200 and time.perf_counter() - t0 < 0.02
        except httpx.HTTPError:
            fast = False
        calm = calm + 1 if fast else 0
        time.sleep(0.2)
    client.close()


def attack(url: str, rate: int, seconds: int) -> dict:
    wait_idle()
    tool = str(vegeta())
    hits = subprocess.run(
        [tool, "attack", f"-rate={rate}/s", f"-duration={seconds}s", "-timeout=5s"],
        input=f"GET {url}\n".encode(),
        capture_output=True,
        check=True,
    ).stdout
    report = json.loads(
        subprocess.run([tool, "report", "-type=json"], input=hits, capture_output=True, check=True).stdout
    )
    ms = lambda ns: ns / 1e6  # noqa: E731
    return {
        "url": url,
        "rate": rate,
        "requests": report["requests"],
        "throughput": round(report["throughput"], 1),
        "p50_ms": round(ms(report["latencies"]["50th"]), 2),
        "p99_ms": round(ms(report["latencies"]["99th"]), 2),
        "max_ms": round(ms(report["latencies"]["max"]), 2),
        "success": report["success"],
        "status_codes": report["status_codes"],
    }


def main(
    rate: list[int] = typer.Option([1000, 2000], help="requests/s; repeat for several"), seconds: int = 20
) -> None:
    rows = httpx.get(f"{API}/api/hashtags", params={"limit": 1000}).json()
    print(
        f"setup: {platform.node()}, {os.cpu_count()} cores, the whole stack running; "
        f"hashtag_counts has {len(rows)} rows; vegeta for {seconds} s per rate on loopback"
    )
    # every rate of /api/hashtags first: /healthz past its ceiling leaves a backlog behind it
    hashtags = [attack(f"{API}/api/hashtags?limit=20", r, seconds) for r in rate]
    healthz = [attack(f"{API}/healthz", r, seconds) for r in rate]
    results = hashtags + healthz
    wait_idle()  # the next user of the API (a test, another run) finds it idle
    for r in results:
        print(
            f"{r['url']:45} {r['rate']:5} req/s asked: p50 {r['p50_ms']:6.2f} ms  p99 {r['p99_ms']:7.2f} ms  "
            f"max {r['max_ms']:7.2f} ms  {r['throughput']:7.1f} req/s answered  success {r['success']:.1%}"
        )
    for h, z in zip(hashtags, healthz, strict=False):
        print(
            f"at {h['rate']} req/s: p99 /api/hashtags {h['p99_ms']:.2f} ms, /healthz (a query per request) "
            f"{z['p99_ms']:.2f} ms, ratio {h['p99_ms'] / z['p99_ms']:.2f}"
        )
    print("goal: /api/hashtags p99 <= 10 ms at 2,000 req/s")
    out = REPO / "bench" / "results"
    out.mkdir(exist_ok=True)
    (out / "api_latency.json").write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    typer.run(main)
