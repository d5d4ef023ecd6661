"""ClusterBackend with a URL: Django's task framework on a running
gateway, over REST. A wasm_task enqueued here runs on a real worker; its
result comes back through get_result (SUCCESSFUL, the module's return
value, the worker's peer ID). Real processes in a private network
namespace; nothing is mocked."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone
from django_tasks import TaskResultStatus, task_backends
from django_tasks.exceptions import TaskResultDoesNotExist

from tasks_app.client import Client
from tasks_app.django_tasks import RunFailed, RunTimedOut, TaskRefused, wasm_task
from tests.client.conftest import HASH_WASM
from tests.e2e.cluster import HTTP, PROJECT_ROOT, Cluster, running_cluster

URL = f"http://{HTTP}"


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    with running_cluster(tmp_path_factory.mktemp("tasks"), workers=1) as cluster:
        yield cluster


@pytest.fixture
def on_gateway(cluster: Cluster, settings: Any) -> Iterator[Client]:
    """TASKS naming the gateway; the test's sockets in its namespace. A
    client beside the backend, to wait for runs."""
    settings.TASKS = {
        "default": {"BACKEND": "tasks_app.django_tasks.ClusterBackend", "OPTIONS": {"url": URL}}
    }
    with cluster.netns.entered(), Client(URL) as client:
        yield client


def test_enqueue_runs_on_a_worker_and_get_result_has_its_value(
    cluster: Cluster, on_gateway: Client
) -> None:
    puzzle = wasm_task(str(HASH_WASM), name="puzzle")
    result = puzzle.enqueue(input=0, difficulty=3)
    assert result.status == TaskResultStatus.READY
    assert result.id.startswith("puzzle-")

    on_gateway.wait(result.id, timeout=30)
    result.refresh()
    assert result.status == TaskResultStatus.SUCCESSFUL
    assert result.return_value == "2832"
    worker = cluster.workers[0][1]
    assert result.worker_ids == [worker]
    assert result.attempts == 1 and result.errors == []
    assert result.started_at is not None and result.finished_at is not None

    by_id = task_backends["default"].get_result(result.id)
    assert (by_id.status, by_id.return_value) == (TaskResultStatus.SUCCESSFUL, "2832")
    assert by_id.task.module == on_gateway.upload(HASH_WASM)


def test_run_after_defers_the_run(on_gateway: Client) -> None:
    when = timezone.now() + timedelta(seconds=1.5)
    result = wasm_task(str(HASH_WASM)).using(run_after=when).enqueue(input=0, difficulty=3)
    task = on_gateway.get(result.id)
    due = task["runs"][0]["due_at"]
    assert abs((timezone.datetime.fromisoformat(due) - when).total_seconds()) < 1
    assert on_gateway.wait(result.id, timeout=30)["state"] == "succeeded"
    result.refresh()
    assert result.status == TaskResultStatus.SUCCESSFUL
    assert result.started_at is not None and result.started_at >= when


def test_a_failing_run_is_failed_with_its_error(on_gateway: Client) -> None:
    """A 1 ms time limit on a long puzzle: the run ends timed out (or
    failed while compiling) and the result says why."""
    result = wasm_task(str(HASH_WASM)).enqueue(input=0, difficulty=7, duration=0.001)
    run = on_gateway.wait(result.id, timeout=30)["runs"][0]
    assert run["state"] in ("timed_out", "failed")
    result.refresh()
    assert result.status == TaskResultStatus.FAILED
    kind = RunTimedOut if run["state"] == "timed_out" else RunFailed
    assert [(e.exception_class, e.traceback) for e in result.errors] == [(kind, run["error"])]
    assert result.worker_ids == [run["worker"]]


def test_priority_and_queue_are_sent_and_a_run_of_an_unserved_queue_waits(
    on_gateway: Client,
) -> None:
    result = wasm_task(str(HASH_WASM), priority=10, queue_name="gpu").enqueue(input=0)
    task = on_gateway.get(result.id)
    assert (task["priority"], task["queue"]) == (10, "gpu")
    assert "queue 'gpu'" in task["waiting_for"]  # the cluster's worker serves "default"
    with pytest.raises(TaskRefused) as refused:
        wasm_task("0" * 64).enqueue(input=0)
    assert (refused.value.status, refused.value.field) == (400, "module")


def test_an_unknown_id_does_not_exist(on_gateway: Client) -> None:
    with pytest.raises(TaskResultDoesNotExist):
        task_backends["default"].get_result("no-such-task")


def test_the_example_project_runs_the_puzzle_end_to_end(cluster: Cluster) -> None:
    """examples/django_tasks/run_puzzle.py, as its README says to run it,
    against the cluster's gateway."""
    env = {k: v for k, v in cluster.env.items() if k != "DJANGO_SETTINGS_MODULE"}
    proc = cluster.netns.spawn(
        [sys.executable, str(PROJECT_ROOT / "examples/django_tasks/run_puzzle.py"), "5"],
        env={**env, "WW_URL": URL},
        cwd=PROJECT_ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    out, _ = proc.communicate(timeout=90)
    assert proc.returncode == 0, out
    assert "enqueued hash-puzzle-" in out and ": READY" in out
    assert ": SUCCESSFUL after 1 attempt(s)" in out
    assert f"return value 610536 from worker {cluster.workers[0][1]}" in out
