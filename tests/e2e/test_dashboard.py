"""The dashboard in headless Chromium (Debian's, driven by Playwright): the
charts fill in during a replay without a reload (server-sent events), the
window selector works from the keyboard, and a screenshot is kept in
test-artifacts/."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid

from playwright.sync_api import expect

from tests.conftest import REPO

ARTIFACTS = REPO / "test-artifacts"


def chart_total(page, canvas_id: str) -> int:
    return page.evaluate(f"() => Chart.getChart('{canvas_id}').data.datasets[0].data.reduce((a, b) => a + b, 0)")


def posts_counted(page) -> int:
    return int(page.locator("#stat-posts").inner_text().replace(",", "").replace("\u202f", "") or 0)


def test_charts_fill_in_live_and_the_window_can_be_switched(page, tmp_path):
    requests: list[str] = []
    page.on("request", lambda r: requests.append(r.url))
    page.goto("http://127.0.0.1:8000/")
    expect(page.locator("#stat-pipeline")).to_contain_text("running", timeout=15_000)
    page.wait_for_function("() => document.querySelector('#stat-posts').textContent !== '–'")
    before = posts_counted(page)

    # a replay of the sample with ids of its own, while the page stays open
    sample, run = tmp_path / "sample.jsonl", uuid.uuid4().hex[:12]
    with open(REPO / "samples" / "posts.jsonl", encoding="utf-8") as src, open(sample, "w", encoding="utf-8") as dst:
        for line in src:
            post = json.loads(line)
            post["id"] = f"browser-{run}-{post['id']}"
            dst.write(json.dumps(post, ensure_ascii=False) + "\n")
    n_posts = sum(1 for _ in open(sample, encoding="utf-8"))
    subprocess.run(
        [sys.executable, "-m", "producer.cli", "replay", str(sample)], cwd=REPO, check=True, capture_output=True
    )
    page.wait_for_function(
        f"() => Number(document.querySelector('#stat-posts').textContent.replace(/\\D/g, '')) >= {before + n_posts}",
        timeout=90_000,
    )
    assert posts_counted(page) == before + n_posts
    page.wait_for_function("() => Chart.getChart('hashtags-chart').data.datasets[0].data.length > 0")
    assert chart_total(page, "words-chart") > 0

    # keyboard only: from "all time", arrow keys move to "last 5 min"
    page.locator("input[name=window][value=all]").focus()
    with page.expect_response(lambda r: "/api/hashtags" in r.url and "window=5m" in r.url) as response:
        for _ in range(4):
            page.keyboard.press("ArrowRight")
    expect(page.locator("input[name=window][value='5m']")).to_be_checked()
    served = [row["count"] for row in response.value.json()]
    page.wait_for_function(
        f"() => JSON.stringify(Chart.getChart('hashtags-chart').data.datasets[0].data) == '{json.dumps(served, separators=(',', ':'))}'",
        timeout=15_000,
    )

    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "dashboard.png"), full_page=True)
    assert (ARTIFACTS / "dashboard.png").stat().st_size > 10_000
