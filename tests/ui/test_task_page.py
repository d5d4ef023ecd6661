"""The status page and a task's own page in real headless Chromium at
1280x800 against the live gateway: each task links to its page, which lists
its runs with their attempts (100 a page) and follows them live; progress
bars are segmented by run state with a cancelled count; workers gone long
ago are folded away; the page has its own favicon and says what the empty
events box is for."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.e2e.cluster import HTTP, MANAGE, PROJECT_ROOT, Cluster
from tests.ui.live import submit
from tests.ui.test_status_page import browser  # noqa: F401  (the fixture)

WIDTH, HEIGHT = 1280, 800
GONE_WORKERS = 3


def page_at_1280(chromium: Any, path: str, **context: Any) -> Any:
    page = chromium.new_context(viewport={"width": WIDTH, "height": HEIGHT}, **context).new_page()
    page.goto(f"http://{HTTP}{path}")
    return page


def cell(page: Any, row: str, column: str) -> str:
    return page.inner_text(f"{row} td.{column}").strip()


@pytest.fixture(scope="module")
def gone_workers(cluster: Cluster) -> Iterator[list[str]]:
    """Rows of workers that left hours ago (a worker without an identity
    file leaves one at each restart), written into the gateway's database."""
    peers = [f"12D3KooWGoneLongAgo{i:033d}" for i in range(GONE_WORKERS)]
    code = (
        "from datetime import timedelta\n"
        "from django.utils import timezone\n"
        "from tasks_app.models import WorkerNode\n"
        f"for i, peer in enumerate({peers!r}):\n"
        "    WorkerNode.objects.update_or_create(peer_id=peer, defaults=dict(\n"
        "        address='127.0.0.1:1', connected=False,\n"
        "        last_seen=timezone.now() - timedelta(hours=i + 1)))\n"
    )
    subprocess.run(
        [sys.executable, MANAGE, "shell", "-c", code],
        env=cluster.env,
        check=True,
        cwd=PROJECT_ROOT,
        capture_output=True,
    )
    yield peers


def test_status_page_links_tasks_segments_bars_and_folds_gone_workers(
    cluster: Cluster,
    browser: Any,  # noqa: F811
    gone_workers: list[str],
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    submit(cluster, "tp-mixed", start="0", delay="0.2", repeats="2")
    cluster.wait_for(
        lambda: cluster.request("GET", "/tasks/tp-mixed").json()["state"] == "succeeded",
        30,
        "tp-mixed to finish",
    )
    submit(cluster, "tp-cancelled", start="600", delay="1", repeats="4")
    assert cluster.request("DELETE", "/tasks/tp-cancelled").status_code == 200

    page = page_at_1280(browser, "/")
    page.wait_for_selector("#live.on", timeout=10_000)
    row = 'tr[data-task="tp-cancelled"]'
    page.wait_for_selector(row, timeout=10_000)
    page.screenshot(path=str(tmp_path_factory.mktemp("status") / "status.png"), full_page=True)

    # The id links to the task's page.
    for task_id in ("tp-cancelled", "tp-mixed"):
        link = page.locator(f'tr[data-task="{task_id}"] td.id a')
        assert link.inner_text() == task_id
        assert link.get_attribute("href") == f"/status/tasks/{task_id}/"
    # Bars are drawn in segments, one per state, sized by its runs.
    assert cell(page, row, "cancelled") == "4"
    assert page.get_attribute(f"{row} .seg.cancelled", "data-count") == "4"
    assert page.get_attribute(f"{row} .seg.cancelled", "style") == "width: 100%;"
    mixed = 'tr[data-task="tp-mixed"]'
    assert page.get_attribute(f"{mixed} .seg.succeeded", "data-count") == "2"
    assert page.get_attribute(f"{mixed} .seg.cancelled", "data-count") == "0"
    assert page.locator(f"{mixed} .bar .seg").count() == 6
    assert cell(page, mixed, "cancelled") == "0"
    # Gone workers: folded under one line, not in the pool's table.
    pool = page.locator("#workers tbody tr[data-peer]")
    listed = {pool.nth(i).get_attribute("data-peer") for i in range(pool.count())}
    assert {peer for _, peer in cluster.workers} <= listed
    assert not listed & set(gone_workers)
    gone = page.locator("details#gone")
    assert gone.is_visible() and gone.get_attribute("open") is None
    assert page.inner_text("#gone summary").startswith(f"{GONE_WORKERS} workers gone")
    assert not page.locator("#gone tbody tr").first.is_visible()  # folded
    page.click("#gone summary")
    assert page.locator("#gone tbody tr[data-peer]").count() == GONE_WORKERS
    # Why there are so many: the page says, and names the flag.
    assert "runworker --identity-file" in page.inner_text("body")
    assert page.evaluate("document.documentElement.scrollWidth") <= WIDTH

    page.click('tr[data-task="tp-mixed"] td.id a')
    page.wait_for_selector("#runs")
    assert page.url == f"http://{HTTP}/status/tasks/tp-mixed/"
    page.context.close()


def test_task_page_lists_runs_with_attempts_and_follows_them_live(
    cluster: Cluster,
    browser: Any,  # noqa: F811
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    submit(cluster, "tp-live", start="2", delay="0.5", repeats="3")
    page = page_at_1280(browser, "/status/tasks/tp-live/")
    page.wait_for_selector("#live.on", timeout=10_000)
    assert page.locator("#runs tbody.run").count() == 3
    # The runs end while the page is open: it follows them over its websocket.
    page.wait_for_selector('#runs tbody.run[data-run="2"][data-state="succeeded"]', timeout=30_000)
    page.screenshot(path=str(tmp_path_factory.mktemp("task") / "task.png"), full_page=True)
    workers = {peer for _, peer in cluster.workers}
    for index in range(3):
        run = f'#runs tbody.run[data-run="{index}"]'
        assert cell(page, run, "state") == "succeeded"
        assert cell(page, run, "result") == "2832"
        tries = page.locator(f"{run} td.try")
        assert tries.count() == 1 and tries.inner_text() == "1"
        assert page.get_attribute(f"{run} code", "title") in workers
    assert page.get_attribute("#summary .seg.succeeded", "data-count") == "3"
    assert page.inner_text("#summary .count.succeeded b") == "3"
    assert page.inner_text("#summary .count.cancelled b") == "0"
    assert page.evaluate("document.documentElement.scrollWidth") <= WIDTH
    page.context.close()


def test_a_task_of_many_runs_is_shown_100_runs_a_page(
    cluster: Cluster,
    browser: Any,  # noqa: F811
) -> None:
    submit(cluster, "tp-many", start="600", delay="1", repeats="250")
    try:
        page = page_at_1280(browser, "/status/tasks/tp-many/")
        runs = page.locator("#runs tbody.run")
        assert runs.count() == 100
        assert runs.first.get_attribute("data-run") == "0"
        assert "page 1 of 3" in page.inner_text(".pager")
        page.click(".pager a[rel=next]")
        page.wait_for_url("**/status/tasks/tp-many/?page=2")
        assert runs.count() == 100
        assert runs.first.get_attribute("data-run") == "100"
        assert page.inner_text("#summary .count.pending b") == "250"
        page.goto(f"http://{HTTP}/status/tasks/tp-many/?page=3")
        assert runs.count() == 50
        assert runs.last.get_attribute("data-run") == "249"
        page.context.close()
    finally:
        cluster.request("DELETE", "/tasks/tp-many")


def test_favicon_and_the_empty_events_placeholder(cluster: Cluster, browser: Any) -> None:  # noqa: F811
    # Without scripts the page is as served, before any event could arrive.
    page = page_at_1280(browser, "/", java_script_enabled=False)
    placeholder = page.locator("#events .empty")
    assert placeholder.is_visible()
    assert placeholder.inner_text().startswith("No run events yet")
    icon = page.get_attribute("link[rel=icon]", "href")
    assert icon
    page.context.close()
    with cluster.netns.entered(), httpx.Client(base_url=f"http://{HTTP}") as client:
        served = client.get(icon)
        task_page = client.get("/status/tasks/no-such-task/")
    assert served.status_code == 200
    assert served.headers["content-type"].startswith("image/svg+xml")
    assert served.content.startswith(b"<svg")
    assert task_page.status_code == 404
