"""The status page at / in real headless Chromium (Debian's package, driven
by Playwright) against the live gateway: a task submitted through the API
shows up, its progress bar reaches 100% as its runs finish, and the worker
pool is listed."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.e2e.cluster import HTTP, Cluster
from tests.ui.browser import chromium
from tests.ui.live import HASH_WASM, submit


@pytest.fixture(scope="module")
def browser(cluster: Cluster) -> Iterator[Any]:
    """Chromium started inside the cluster's namespace (its driver and the
    browser inherit it), so 127.0.0.1:8080 is the gateway."""
    with chromium(cluster.netns) as browser:
        yield browser


def test_progress_reaches_100_percent_live(
    cluster: Cluster, browser: Any, tmp_path_factory: pytest.TempPathFactory
) -> None:
    page = browser.new_page()
    page.goto(f"http://{HTTP}/")
    page.wait_for_selector("#live.on", timeout=10_000)  # the event stream is open

    submit(cluster, "ui-progress", start="0.5", delay="0.5", repeats="3")

    row = 'tr[data-task="ui-progress"]'
    page.wait_for_selector(f'{row}[data-progress="100"]', timeout=30_000)
    assert page.inner_text(f"{row} .pct") == "100%"
    assert page.inner_text(f"{row} td.state") == "succeeded"
    assert page.get_attribute(f"{row} [role=progressbar]", "aria-valuenow") == "100"
    assert page.inner_text(f"{row} td.num >> nth=0") == "3 / 3"
    # The runs' events arrived over the WebSocket, not by the page's 5 s poll.
    log = page.inner_text("#events")
    assert log.count("ui-progress#") >= 6, log  # running + succeeded for each run
    assert "→ 2832" in log

    for _, peer in cluster.workers:
        worker = f'#workers tr[data-peer="{peer}"]'
        assert page.inner_text(f"{worker} td.connected") == "yes"
    page.screenshot(path=str(tmp_path_factory.mktemp("screens") / "status.png"), full_page=True)
    page.close()


def test_swagger_ui_submits_a_task_with_the_multipart_form(cluster: Cluster, browser: Any) -> None:
    """The OpenAPI docs page documents the upload well enough to use it:
    Try it out, fill the seed's form, pick the module, Execute -> 201."""
    page = browser.new_page()
    page.goto(f"http://{HTTP}/api/docs/")
    create = "#operations-tasks-tasks_create"
    page.click(f"{create} .opblock-summary")
    page.click(f"{create} .try-out__btn")
    fields = {"id": "from-docs", "start": "0", "repeats": "2", "input": "0", "difficulty": "3"}
    for name, value in fields.items():
        page.fill(f'{create} tr[data-property-name="{name}"] input', value)
    page.set_input_files(
        f'{create} tr[data-property-name="wasm"] input[type=file]',
        files=[{"name": "hash.wasm", "mimeType": "application/wasm", "buffer": HASH_WASM}],
    )
    page.click(f"{create} .execute")
    status = page.wait_for_selector(
        f"{create} .live-responses-table tr.response .response-col_status"
    )
    assert status.inner_text().strip().startswith("201")
    page.close()

    task = cluster.wait_for(
        lambda: (
            (t := cluster.request("GET", "/tasks/from-docs").json())["state"] == "succeeded" and t
        ),
        30,
        "the task submitted from the docs page to finish",
    )
    assert [run["result"] for run in task["runs"]] == ["2832", "2832"]
