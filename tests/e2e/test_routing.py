"""Labels and queues end to end (real gateway and worker processes in a
private network namespace): workers started with `runworker --labels
--queues` each get only the runs their queues and labels accept; a run no
worker accepts waits, says why in `GET /tasks/<id>`, and runs once a
worker that accepts it joins; `GET /workers` shows what each serves."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.cluster import PROJECT_ROOT, Cluster, running_cluster

HASH_WASM = (PROJECT_ROOT / "hash.wasm").read_bytes()
FINAL = {"succeeded", "failed", "timed_out", "cancelled"}


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Cluster]:
    with running_cluster(tmp_path) as cluster:
        yield cluster


def _submit(cluster: Cluster, task_id: str, **task: Any) -> None:
    body = {
        "id": task_id,
        "wasm_base64": base64.b64encode(HASH_WASM).decode(),
        "input": 0,
        "difficulty": 2,
        "duration": 10,
        **task,
    }
    response = cluster.request("POST", "/tasks", json=body)
    assert response.status_code == 201, response.text


def _task(cluster: Cluster, task_id: str) -> dict[str, Any]:
    return dict(cluster.request("GET", f"/tasks/{task_id}").json())


def _finished(cluster: Cluster, task_id: str, timeout: float = 60) -> list[dict[str, Any]]:
    def done() -> list[dict[str, Any]] | None:
        runs = _task(cluster, task_id)["runs"]
        return runs if runs and all(run["state"] in FINAL for run in runs) else None

    runs: list[dict[str, Any]] = cluster.wait_for(done, timeout, f"{task_id}'s runs to end")
    return runs


def test_two_workers_of_different_labels_each_get_only_their_runs(cluster: Cluster) -> None:
    gpu = cluster.start_worker(
        "--concurrency", "2", "--queues", "ml,default", "--labels", "gpu=a100"
    )
    plain = cluster.start_worker("--concurrency", "2")
    cluster.wait_joined(gpu)
    cluster.wait_joined(plain)
    _submit(cluster, "needs-gpu", repeats=6, queue="ml", constraints={"gpu": "a100"})
    _submit(cluster, "needs-ml", repeats=4, queue="ml")
    _submit(cluster, "needs-gpu-default", repeats=4, constraints={"gpu": "a100"})
    for task_id in ("needs-gpu", "needs-ml", "needs-gpu-default"):
        runs = _finished(cluster, task_id)
        assert {run["state"] for run in runs} == {"succeeded"}, runs
        assert {run["worker"] for run in runs} == {gpu}, task_id
    # Plain runs may go to either; 12 of them with both idle reach the plain one.
    _submit(cluster, "plain", repeats=12)
    runs = _finished(cluster, "plain")
    assert {run["state"] for run in runs} == {"succeeded"}
    assert plain in {run["worker"] for run in runs}

    workers = {w["peer"]: w for w in cluster.request("GET", "/workers").json()}
    assert workers[gpu]["labels"] == {"gpu": "a100"}
    assert workers[gpu]["queues"] == ["default", "ml"]
    assert workers[plain]["labels"] == {} and workers[plain]["queues"] == ["default"]
    for worker in workers.values():
        assert worker["connected"] is True and worker["concurrency"] == 2
        assert worker["address"] and worker["last_seen"]
        assert isinstance(worker["in_flight"], int)


def test_a_run_waits_for_a_matching_worker_says_why_and_runs_when_one_joins(
    cluster: Cluster,
) -> None:
    plain = cluster.start_worker()
    cluster.wait_joined(plain)
    _submit(cluster, "late", repeats=2, queue="render", constraints={"zone": "eu"})
    _submit(cluster, "now", repeats=2)
    assert {run["worker"] for run in _finished(cluster, "now")} == {plain}  # not held up
    task = _task(cluster, "late")
    assert [run["state"] for run in task["runs"]] == ["pending", "pending"]
    assert task["waiting_for"] == (
        "no connected worker accepts it: it needs a worker serving queue 'render' "
        "with labels zone=eu"
    )
    # A worker serving the queue without the label does not do either.
    wrong = cluster.start_worker("--queues", "render", "--labels", "zone=us")
    cluster.wait_joined(wrong)
    assert _task(cluster, "late")["waiting_for"] == task["waiting_for"]
    right = cluster.start_worker("--queues", "render", "--labels", "zone=eu,tier=2")
    cluster.wait_joined(right)
    runs = _finished(cluster, "late")
    assert {run["state"] for run in runs} == {"succeeded"}
    assert {run["worker"] for run in runs} == {right}
    assert _task(cluster, "late")["waiting_for"] is None


def test_runworker_refuses_labels_the_gateway_would_refuse(cluster: Cluster) -> None:
    proc = cluster.manage("runworker", "--dial", cluster.peer_id, "--labels", "gpu")
    assert proc.popen.wait(60) != 0
