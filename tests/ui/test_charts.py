"""The status page's live charts in real headless Chromium at 1280x800
against the live gateway: four uPlot charts are drawn (their canvases hold
more than a background), the workers chart shows both workers, and after a
task of several runs the runs and lateness charts' own data include them;
a screenshot of the charts is saved and looked at for the series' colours."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.cluster import HTTP, Cluster
from tests.ui.browser import chromium
from tests.ui.live import submit

RUNS = 8
SUCCEEDED_GREEN = (0x16, 0xA3, 0x4A)  # the runs chart's succeeded line (and the legend's)

# Succeeded runs in the runs chart's own data: uPlot's series 1 is runs/s
# per step, so runs = rate * step.
SUCCEEDED_DRAWN = """() => {
  const c = window.wwCharts;
  if (!c || !c.data || !c.plots.runs) return -1;
  return Math.round(c.plots.runs.data[1].reduce((a, r) => a + (r || 0), 0) * c.data.step);
}"""

# How many pixels of each chart's canvas are not the blank background.
INKED_PIXELS = """() => Array.from(document.querySelectorAll("#charts .uplot canvas"), (canvas) => {
  const pixels = canvas.getContext("2d").getImageData(0, 0, canvas.width, canvas.height).data;
  let inked = 0;
  for (let i = 3; i < pixels.length; i += 4) if (pixels[i] > 0) inked += 1;
  return inked;
})"""

# Pixels near `colour` inside `crop` of a PNG, decoded by the browser itself,
# and how many colours the whole image has (up to 64).
PNG_PIXELS_NEAR = """async ([png, colour, crop]) => {
  const image = new Image();
  image.src = "data:image/png;base64," + png;
  await image.decode();
  const canvas = document.createElement("canvas");
  canvas.width = image.width;
  canvas.height = image.height;
  const context = canvas.getContext("2d");
  context.drawImage(image, 0, 0);
  const p = context.getImageData(0, 0, image.width, image.height).data;
  let near = 0, distinct = new Set();
  for (let i = 0; i < p.length; i += 4) {
    const x = (i / 4) % image.width, y = Math.floor(i / 4 / image.width);
    const inside = x >= crop.x && x < crop.x + crop.width
      && y >= crop.y && y < crop.y + crop.height;
    const d = Math.abs(p[i] - colour[0]) + Math.abs(p[i + 1] - colour[1])
      + Math.abs(p[i + 2] - colour[2]);
    if (inside && d < 60) near += 1;
    if (distinct.size < 64) distinct.add((p[i] << 16) | (p[i + 1] << 8) | p[i + 2]);
  }
  return { near, distinct: distinct.size, width: image.width, height: image.height };
}"""


@pytest.fixture(scope="module")
def browser(cluster: Cluster) -> Iterator[Any]:
    with chromium(cluster.netns) as browser:
        yield browser


def test_charts_are_drawn_and_take_in_a_tasks_runs(
    cluster: Cluster, browser: Any, tmp_path: Path
) -> None:
    page = browser.new_page(viewport={"width": 1280, "height": 800})
    page.goto(f"http://{HTTP}/")
    # uPlot made its four charts, and at least one sample has been drawn
    # (the gateway samples every 5 s from its start).
    page.wait_for_function("() => document.querySelectorAll('#charts .uplot canvas').length === 4")
    page.wait_for_function(
        "() => window.wwCharts.data && window.wwCharts.data.at.length >= 1", timeout=20_000
    )
    assert all(inked > 500 for inked in page.evaluate(INKED_PIXELS))  # axes, grid and lines
    # Both workers of the cluster, in the workers chart's own data.
    page.wait_for_function(
        "() => window.wwCharts.plots.workers.data[1].at(-1) === 2", timeout=20_000
    )
    box = page.locator("#charts").bounding_box()
    assert box is not None and box["y"] < 800 and box["width"] > 1000  # in view, across the page
    before = page.evaluate(SUCCEEDED_DRAWN)
    assert before >= 0

    submit(cluster, "ui-charts", start="0.2", delay="0.2", repeats=str(RUNS))
    cluster.wait_for(
        lambda: cluster.request("GET", "/tasks/ui-charts").json()["state"] == "succeeded",
        30,
        "the task's runs to succeed",
    )
    # The page takes them in at its next poll after the gateway's next sample.
    page.wait_for_function(f"() => ({SUCCEEDED_DRAWN})() >= {before + RUNS}", timeout=20_000)
    data = page.evaluate("() => window.wwCharts.data")
    assert sum(data["ended"]["succeeded"]) >= before + RUNS
    assert data["sampled"] is True  # the gateway's own sampler fills them
    assert len(data["at"]) <= data["points"] == 180
    # The steps the runs started in have a lateness; p99 is never below p50.
    lateness = page.evaluate("() => window.wwCharts.plots.lateness.data")
    pairs = zip(lateness[1], lateness[2], strict=True)
    drawn = [(p50, p99) for p50, p99 in pairs if p50 is not None]
    assert drawn and all(0 <= p50 <= p99 for p50, p99 in drawn)

    page.screenshot(path=str(tmp_path / "status.png"))  # the page as a person sees it first
    shot = tmp_path / "charts.png"
    charts = page.locator("#charts")
    charts.screenshot(path=str(shot))
    # The runs chart's plotting area (not its legend, whose swatch is green too).
    outer, plot = charts.bounding_box(), page.locator('[data-chart="runs"] .u-over').bounding_box()
    assert outer is not None and plot is not None
    crop = {k: plot[k] - outer.get(k, 0) for k in ("x", "y")} | {
        "width": plot["width"],
        "height": plot["height"],
    }
    png = base64.b64encode(shot.read_bytes()).decode("ascii")
    seen = page.evaluate(PNG_PIXELS_NEAR, [png, list(SUCCEEDED_GREEN), crop])
    assert seen["width"] > 1000 and seen["height"] > 300, seen
    assert seen["distinct"] > 8, seen  # not one flat colour
    assert seen["near"] > 20, seen  # the succeeded line is drawn on the runs chart
    page.close()
