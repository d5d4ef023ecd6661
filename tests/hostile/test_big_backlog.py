"""A backlog far bigger than the scheduler's window, submitted all at once by
anonymous POSTs of the largest tasks allowed, against a real gateway and
two workers in a private network namespace: the event loop keeps serving
while the runs are stored (workers answer their pings, a good task runs),
and a restart reads only a window of the backlog, in bounded memory."""

from __future__ import annotations

import concurrent.futures
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.cluster import PROJECT_ROOT, Cluster, running_cluster, seed_form
from tests.faults.harness import kill
from tests.hostile.memory import rss_mb

HASH_WASM = (PROJECT_ROOT / "hash.wasm").read_bytes()
WINDOW = 5000
RSS_BOUND_MB = 500


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Cluster]:
    with running_cluster(
        tmp_path,
        workers=2,
        WW_QUEUE_WINDOW=str(WINDOW),
        WW_PING_INTERVAL="0.5",
        WW_PING_TIMEOUT="1.5",
    ) as cluster:
        yield cluster


def _post(cluster: Cluster, task_id: str, **fields: str) -> int:
    response = cluster.request(
        "POST",
        "/tasks",
        data=seed_form(id=task_id, **fields),
        files={"wasm": ("hash.wasm", HASH_WASM)},
    )
    return response.status_code


def _good_task(cluster: Cluster, task_id: str) -> None:
    assert _post(cluster, task_id, start="0", delay="0", repeats="1") == 201

    def done() -> bool:
        body = cluster.request("GET", f"/tasks/{task_id}").json()
        return body["completions"] == 1

    cluster.wait_for(done, 60, f"{task_id} to succeed")


def test_a_huge_backlog_neither_stalls_the_loop_nor_the_restart(cluster: Cluster) -> None:
    assert cluster.gateway is not None
    _good_task(cluster, "warm")  # the module is stored: plain POSTs take the fast lane
    # A good task with a run every 0.2 s goes on while the backlog is stored.
    assert _post(cluster, "ticks", start="0", delay="0.2", repeats="40") == 201
    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        codes = list(
            pool.map(
                lambda k: _post(cluster, f"huge{k}", start="3600", delay="0", repeats="100000"),
                range(4),
            )
        )
    assert codes == [201] * 4

    def ticked() -> bool:
        return cluster.request("GET", "/tasks/ticks").json()["completions"] == 40

    cluster.wait_for(ticked, 60, "every tick to run")
    log = cluster.gateway_log()
    # The loop never stopped answering: no worker was dropped, no run lost.
    assert "no answer to ping" not in log
    assert " left (" not in log
    ticks = cluster.request("GET", "/tasks/ticks?runs_limit=100").json()
    assert all(len(run["attempts"]) == 1 for run in ticks["runs"])

    # Restart on 400,000 waiting runs: a window of them is read.
    kill(cluster.gateway.pid)
    cluster.gateway.popen.wait(timeout=10)
    cluster.start_gateway()
    listening = cluster.wait_for(
        lambda: re.search(r"(\d+) runs queued", cluster.gateway_log()), 60, "the gateway to listen"
    )
    queued = int(listening.group(1))
    assert queued <= WINDOW
    assert rss_mb(cluster.gateway.pid) < RSS_BOUND_MB
    cluster.wait_for(
        lambda: all(sum(" joined " in s for s in proc.lines) >= 2 for proc, _ in cluster.workers),
        30,
        "the workers to rejoin",
    )
    _good_task(cluster, "after")
    assert rss_mb(cluster.gateway.pid) < RSS_BOUND_MB
