"""Hostile runs that wait inside a host call, read input that never comes or
print without end: a real gateway and one worker with one slot, in a
private network namespace. Each run ends at its time limit or its cancel
(the epoch deadline never fires inside a host call, so poll_oneoff needs a
bound of its own), its result stays within WW_RESULT_MAX_BYTES, and the
worker's slot is free again for a good task."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from typing import Any

import pytest
from wasmtime import wat2wasm

from tests.e2e.cluster import PROJECT_ROOT, Cluster, running_cluster, seed_form
from tests.security import hostile

HASH_WASM = (PROJECT_ROOT / "hash.wasm").read_bytes()
RESULT_LIMIT = 10_000
TRUNCATED_MARKER = "…[truncated]"
FINAL = {"succeeded", "failed", "timed_out", "cancelled"}
HOUR_MS = "3600000"


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    with running_cluster(
        tmp_path_factory.mktemp("sandbox-blocking"),
        workers=1,
        concurrency=1,
        WW_RESULT_MAX_BYTES=str(RESULT_LIMIT),
    ) as cluster:
        yield cluster


def submit(cluster: Cluster, task_id: str, wasm: bytes, **fields: str) -> None:
    form = seed_form(id=task_id, start="0", repeats="1", delay="0", **fields)
    response = cluster.request(
        "POST", "/tasks", data=form, files={"wasm": (f"{task_id}.wasm", bytes(wasm))}
    )
    assert response.status_code == 201, response.text


def task(cluster: Cluster, task_id: str) -> dict[str, Any]:
    response = cluster.request("GET", f"/tasks/{task_id}")
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def finished_run(cluster: Cluster, task_id: str, timeout: float = 30) -> dict[str, Any]:
    def check() -> dict[str, Any] | None:
        body = task(cluster, task_id)
        return body if body["state"] in FINAL else None

    (run,) = cluster.wait_for(check, timeout, f"{task_id} to finish")["runs"]
    assert len(run["attempts"]) == 1, "a module's own fault is its result, never retried"
    return dict(run)


def assert_slot_serves_a_good_task(cluster: Cluster, task_id: str) -> None:
    submit(cluster, task_id, HASH_WASM, duration="30")
    run = finished_run(cluster, task_id)
    assert (run["state"], run["result"]) == ("succeeded", "2832")
    for proc, peer in cluster.workers:
        assert proc.popen.poll() is None, f"worker {peer} died: {proc.output()}"


def test_an_hour_in_poll_oneoff_ends_at_a_one_second_limit(cluster: Cluster) -> None:
    submit(cluster, "sleeper", wat2wasm(hostile.SLEEP_MS_IN_RUN), input=HOUR_MS, duration="1")
    run = finished_run(cluster, "sleeper")
    assert (run["state"], run["error"]) == ("timed_out", "time limit of 1.0 s exceeded")
    assert_slot_serves_a_good_task(cluster, "after-sleeper")


def test_an_hour_in_poll_oneoff_of_a_wasi_command_ends_at_its_limit(cluster: Cluster) -> None:
    submit(cluster, "sleeping-command", wat2wasm(hostile.SLEEP_AN_HOUR_IN_START), duration="1")
    run = finished_run(cluster, "sleeping-command")
    assert (run["state"], run["error"], run["result"]) == (
        "timed_out",
        "time limit of 1.0 s exceeded",
        "",
    )
    assert_slot_serves_a_good_task(cluster, "after-sleeping-command")


def test_delete_ends_a_run_waiting_in_poll_oneoff(cluster: Cluster) -> None:
    submit(cluster, "sleeper-cancelled", wat2wasm(hostile.SLEEP_MS_IN_RUN), input=HOUR_MS)

    def running() -> bool:
        return task(cluster, "sleeper-cancelled")["runs"][0]["state"] == "running"

    cluster.wait_for(running, 30, "the sleeper to run")
    assert cluster.request("DELETE", "/tasks/sleeper-cancelled").status_code == 200
    run = finished_run(cluster, "sleeper-cancelled")
    assert run["state"] == "cancelled"
    assert_slot_serves_a_good_task(cluster, "after-cancelled-sleeper")


def test_a_command_reading_stdin_sees_end_of_file_at_once(cluster: Cluster) -> None:
    submit(cluster, "reader", wat2wasm(hostile.READ_STDIN_UNTIL_EOF), duration="60")
    run = finished_run(cluster, "reader")
    assert (run["state"], run["result"]) == ("succeeded", "eof\n")


@pytest.mark.parametrize(
    ("task_id", "wat"),
    [("printer", hostile.ENDLESS_STDOUT), ("stderr-printer", hostile.ENDLESS_STDERR)],
)
def test_an_endless_printer_ends_at_its_limit_with_a_bounded_result(
    cluster: Cluster, task_id: str, wat: str
) -> None:
    submit(cluster, task_id, wat2wasm(wat), duration="1")
    run = finished_run(cluster, task_id)
    assert (run["state"], run["error"]) == ("timed_out", "time limit of 1.0 s exceeded")
    assert len(run["result"].encode()) <= RESULT_LIMIT
    if task_id == "printer":
        assert run["result"].endswith(TRUNCATED_MARKER)
    assert_slot_serves_a_good_task(cluster, f"after-{task_id}")


def test_a_result_that_is_not_utf8_is_capped_in_bytes(cluster: Cluster) -> None:
    """64,000 bytes of 0xff on stdout: output that is not UTF-8 comes back
    as bytes (result_base64), cut to the limit and marked truncated."""
    submit(cluster, "not-utf8", wat2wasm(hostile.INVALID_UTF8_STDOUT))
    run = finished_run(cluster, "not-utf8")
    assert run["state"] == "succeeded"
    assert run["result"] == ""
    assert base64.b64decode(run["result_base64"]) == b"\xff" * RESULT_LIMIT
    assert run["result_truncated"] is True
