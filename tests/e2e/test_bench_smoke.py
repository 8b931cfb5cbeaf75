"""The benchmark harness in smoke mode (small numbers), so that it keeps working.
Nothing is asserted about time: only that every part ran and the counts were exact."""

import json
import subprocess
import sys

from tests.conftest import REPO


def test_pipeline_bench_smoke(stack, tmp_path):
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "bench.pipeline_bench",
            "--posts",
            "3000",
            "--rate",
            "200",
            "--freshness-seconds",
            "4",
            "--original-posts",
            "300",
            "--limit-posts",
            "3000",
            "--warmup",
            "500",
            "--timeout",
            "600",
            "--out",
            str(tmp_path),
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    result = json.loads((tmp_path / "pipeline_bench.json").read_text())
    assert result["pipeline"]["counts_exact"] is True
    assert result["warmup"]["posts"] == 500 and result["warmup"]["seconds"] > 0
    assert result["freshness"]["seen"] == 800
    assert result["original_design"]["posts"] == 300 and result["broker_limit"]["posts"] == 3000
    assert set(result["pipeline"]["cost"]) >= {"kafka", "flink-taskmanager", "connect", "postgres"}
    report = (tmp_path / "pipeline_bench.md").read_text()
    assert (
        "| pipeline, end to end" in report and "Bottleneck: " in report and "500 synthetic posts were counted" in report
    )
    assert (tmp_path / "pipeline_bench.png").stat().st_size > 5000
