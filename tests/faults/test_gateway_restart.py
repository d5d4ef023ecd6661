"""SIGKILL the gateway before runs are due, with runs in flight, and while
POSTs are being handled; start it again and check that nothing is lost,
nothing finished runs again, and every POST exists whole or not at all.
The workers come back by themselves."""

from __future__ import annotations

import concurrent.futures
import time
from collections.abc import Callable

import httpx
import pytest
from django.utils.dateparse import parse_datetime

from tests.e2e.cluster import HTTP, Cluster, seed_form
from tests.faults.harness import (
    BUSY_WAT,
    NOOP_WAT,
    Ledger,
    assert_nothing_lost,
    busy_iterations,
    db,
    kill,
    submit,
    wait_finished,
    wait_running,
    wasm,
)


def _restart_gateway(cluster: Cluster) -> None:
    assert cluster.gateway is not None
    old_peer = cluster.peer_id
    kill(cluster.gateway.pid)
    cluster.gateway.popen.wait(timeout=10)
    assert cluster.start_gateway() == old_peer  # the key was kept


def _wait_rejoined(cluster: Cluster) -> None:
    """Each worker joined again, by itself, after its first join."""
    cluster.wait_for(
        lambda: all(
            sum(" joined " in line for line in proc.lines) >= 2 for proc, _ in cluster.workers
        ),
        30,
        "workers to rejoin",
    )


def test_runs_not_yet_due_resume_at_their_due_time(
    make_cluster: Callable[..., Cluster], ledger: Ledger
) -> None:
    cluster = make_cluster(workers=2)
    submit(cluster, NOOP_WAT, id="later", start="3", delay="0.5", repeats="3")
    _restart_gateway(cluster)
    _wait_rejoined(cluster)  # with no one's help

    body = wait_finished(cluster, "later")
    assert body["completions"] == 3
    for run in body["runs"]:
        assert run["state"] == "succeeded"
        assert len(run["attempts"]) == 1
        assert parse_datetime(run["started_at"]) >= parse_datetime(run["due_at"])
    ledger.record(faults=1, counts=assert_nothing_lost(cluster, gateway_killed=True))


def test_runs_in_flight_are_dispatched_again_and_finished_runs_are_not(
    make_cluster: Callable[..., Cluster], ledger: Ledger
) -> None:
    cluster = make_cluster(workers=2)
    submit(cluster, NOOP_WAT, id="done-before", start="0", repeats="2")
    wait_finished(cluster, "done-before")
    submit(
        cluster,
        BUSY_WAT,
        id="inflight",
        start="0",
        delay="0",
        repeats="2",
        input=busy_iterations(3),
    )
    wait_running(cluster, "inflight", count=2)
    _restart_gateway(cluster)

    body = wait_finished(cluster, "inflight")
    assert body["completions"] == 2
    for run in body["runs"]:
        assert run["state"] == "succeeded"
        outcomes = [a["outcome"] for a in run["attempts"]]
        assert outcomes == ["lost", "succeeded"], outcomes
        assert run["attempts"][0]["error"] == "gateway restarted"
    before = wait_finished(cluster, "done-before")
    assert [len(run["attempts"]) for run in before["runs"]] == [1, 1]  # not re-run
    ledger.record(faults=1, counts=assert_nothing_lost(cluster, gateway_killed=True))


def test_a_post_exists_whole_or_not_at_all(
    make_cluster: Callable[..., Cluster], ledger: Ledger
) -> None:
    cluster = make_cluster(workers=1)
    module = wasm(NOOP_WAT)
    created: set[str] = set()
    refused: set[str] = set()

    def post(k: int) -> None:
        task_id = f"p{k}"
        try:
            with cluster.netns.entered(), httpx.Client(base_url=f"http://{HTTP}") as client:
                response = client.post(
                    "/tasks",
                    data=seed_form(id=task_id, start="0.5", repeats="3", delay="0.1"),
                    files={"wasm": ("m.wasm", module)},
                    timeout=10,
                )
            if response.status_code == 201:
                created.add(task_id)
            else:
                refused.add(task_id)
        except httpx.HTTPError:
            refused.add(task_id)

    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        futures = [pool.submit(post, k) for k in range(300)]
        deadline = time.monotonic() + 30
        while len(created) < 40 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert cluster.gateway is not None
        kill(cluster.gateway.pid)  # mid-stream: some POSTs are being handled
        concurrent.futures.wait(futures)
    cluster.gateway.popen.wait(timeout=10)
    assert created and refused, (len(created), len(refused))

    with db(cluster) as conn:
        rows = conn.execute(
            "SELECT t.id, t.repeats, COUNT(i.id) FROM tasks_app_task t"
            " LEFT JOIN tasks_app_iteration i ON i.task_id = t.id GROUP BY t.id"
        ).fetchall()
    stored = {task_id for task_id, _, _ in rows}
    assert created <= stored  # every 201 was kept
    assert all(count == max(repeats, 1) for _, repeats, count in rows)  # none partial

    cluster.start_gateway()
    cluster.wait_for(
        lambda: all(
            t["state"] == "succeeded" for t in cluster.request("GET", "/tasks?limit=1000").json()
        ),
        60,
        "every stored task to finish after the restart",
    )
    ledger.record(faults=1, counts=assert_nothing_lost(cluster, gateway_killed=True))


@pytest.mark.parametrize("restarts", [2])
def test_workers_rejoin_after_repeated_gateway_restarts(
    make_cluster: Callable[..., Cluster], ledger: Ledger, restarts: int
) -> None:
    cluster = make_cluster(workers=2)
    for _ in range(restarts):
        _restart_gateway(cluster)
    _wait_rejoined(cluster)
    submit(cluster, NOOP_WAT, id="after-restarts", start="0", repeats="4", delay="0.1")
    body = wait_finished(cluster, "after-restarts")
    assert body["completions"] == 4
    assert {run["worker"] for run in body["runs"]} == {peer for _, peer in cluster.workers}
    ledger.record(faults=restarts, counts=assert_nothing_lost(cluster, gateway_killed=True))
