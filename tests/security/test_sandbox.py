"""The sandbox end to end: a real gateway and two workers (one slot each) in a
private network namespace, fed hostile modules through REST. Each hostile run
ends with its own clear error, a good task on the other slot still succeeds,
modules that import what no worker provides are refused at submission, a WASI
module finds no files, environment or sockets, and both workers live on."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from wasmtime import wat2wasm

from tests.e2e.cluster import PROJECT_ROOT, Cluster, running_cluster, seed_form
from tests.security import hostile

HASH_WASM = (PROJECT_ROOT / "hash.wasm").read_bytes()
MEMORY_LIMIT = 32 * 1024 * 1024
OUTPUT_LIMIT = 64 * 1024
RESULT_LIMIT = 64 * 1024  # WW_RESULT_MAX_BYTES's default
TRUNCATED_MARKER = "…[truncated]"
FINISHED = {"succeeded", "failed", "cancelled"}


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    with running_cluster(
        tmp_path_factory.mktemp("sandbox"),
        workers=2,
        WW_RUN_MEMORY_BYTES=str(MEMORY_LIMIT),
        WW_RUN_OUTPUT_BYTES=str(OUTPUT_LIMIT),
    ) as cluster:
        yield cluster


def submit(cluster: Cluster, task_id: str, wasm: bytes, **fields: str) -> Any:
    form = seed_form(id=task_id, start="0", repeats="1", delay="0", **fields)
    files = {"wasm": (f"{task_id}.wasm", bytes(wasm))}
    return cluster.request("POST", "/tasks", data=form, files=files)


def submit_ok(cluster: Cluster, task_id: str, wasm: bytes, **fields: str) -> None:
    response = submit(cluster, task_id, wasm, **fields)
    assert response.status_code == 201, response.text


def finished_run(cluster: Cluster, task_id: str, timeout: float = 30) -> dict[str, Any]:
    def check() -> dict[str, Any] | None:
        task = cluster.request("GET", f"/tasks/{task_id}").json()
        return task if task["state"] in FINISHED else None

    task = cluster.wait_for(check, timeout, f"{task_id} to finish")
    (run,) = task["runs"]
    assert len(run["attempts"]) == 1, "a module's own fault is its result, never retried"
    return run


def assert_workers_alive(cluster: Cluster) -> None:
    for proc, peer in cluster.workers:
        assert proc.popen.poll() is None, f"worker {peer} died: {proc.output()}"


def test_endless_loop_times_out_while_a_good_task_succeeds_on_the_other_slot(
    cluster: Cluster,
) -> None:
    submit_ok(cluster, "spin", wat2wasm(hostile.INFINITE_LOOP), duration="3")
    submit_ok(cluster, "good-beside-spin", HASH_WASM, duration="10")
    good = finished_run(cluster, "good-beside-spin")
    spin = finished_run(cluster, "spin")

    assert (good["state"], good["result"]) == ("succeeded", "2832")
    assert spin["state"] == "timed_out"
    assert spin["error"] == "time limit of 3.0 s exceeded"
    assert good["worker"] != spin["worker"], "the good task ran on the other slot"
    assert good["finished_at"] < spin["finished_at"], "it did not wait for the spinning one"
    assert_workers_alive(cluster)


# task id -> (module, extra form fields, expected state, expected error text)
HOSTILE_RUNS: dict[str, tuple[str, dict[str, str], str, str]] = {
    "memory-bomb": (
        hostile.GROW_THEN_TRAP,
        {},
        "failed",
        "wasm trap: wasm `unreachable` instruction executed",
    ),
    "huge-memory": (
        hostile.HUGE_MEMORY,
        {},
        "failed",
        "memory minimum size of 32768 pages exceeds memory limits",
    ),
    "huge-table": (
        hostile.HUGE_TABLE,
        {},
        "failed",
        "table minimum size of 10000000 elements exceeds table limits",
    ),
    "deep-recursion": (
        hostile.DEEP_RECURSION,
        {},
        "failed",
        "stack overflow (wasm trap: call stack exhausted)",
    ),
    "endless-stdout": (
        hostile.ENDLESS_STDOUT,
        {"duration": "1"},
        "timed_out",
        "time limit of 1.0 s exceeded",
    ),
}


def test_hostile_modules_each_end_their_own_run_with_a_clear_error(cluster: Cluster) -> None:
    for task_id, (wat, fields, _, _) in HOSTILE_RUNS.items():
        submit_ok(cluster, task_id, wat2wasm(wat), **fields)
    submit_ok(cluster, "grow-until-refused", wat2wasm(hostile.GROW_UNTIL_REFUSED))

    for task_id, (_, _, state, error) in HOSTILE_RUNS.items():
        run = finished_run(cluster, task_id)
        assert (task_id, run["state"], run["error"]) == (task_id, state, error)

    # Output is bounded: the first OUTPUT_LIMIT bytes are kept, and what is
    # sent back is at most RESULT_LIMIT bytes of UTF-8, marked as cut.
    stdout = finished_run(cluster, "endless-stdout")["result"]
    assert stdout == "y" * (RESULT_LIMIT - len(TRUNCATED_MARKER.encode())) + TRUNCATED_MARKER
    # Memory is capped: growth stops at the limit, and the module may carry on.
    capped = finished_run(cluster, "grow-until-refused")
    assert (capped["state"], capped["result"]) == ("succeeded", str(MEMORY_LIMIT // 65536))
    assert_workers_alive(cluster)


@pytest.mark.parametrize(
    ("wat", "problem"),
    [
        (hostile.FOREIGN_IMPORT, "imports functions other than WASI preview1: env.spawn_shell"),
        (
            hostile.UNKNOWN_WASI_IMPORT,
            "unusable WASI import: unknown import: `wasi_snapshot_preview1::sock_connect`",
        ),
    ],
)
def test_module_importing_missing_host_functions_is_refused_at_submission(
    cluster: Cluster, wat: str, problem: str
) -> None:
    response = submit(cluster, "wants-host", wat2wasm(wat))
    assert response.status_code == 400, response.text
    body = response.json()
    assert body["field"] == "wasm"
    assert problem in body["problem"]
    assert cluster.request("GET", "/tasks/wants-host").status_code == 404


def test_wasi_module_finds_no_files_environment_or_sockets(cluster: Cluster) -> None:
    submit_ok(cluster, "escape-probe", wat2wasm(hostile.WASI_PROBE))
    run = finished_run(cluster, "escape-probe")
    assert run["state"] == "succeeded", run
    # 8 is WASI's EBADF: there is no descriptor 3 (no preopened directory, no socket).
    assert run["result"] == "prestat=8 open=8 env=0 accept=8 argc=3\n"


def test_workers_still_serve_after_the_hostile_modules(cluster: Cluster) -> None:
    assert_workers_alive(cluster)
    form = seed_form(id="after-hostile", start="0", repeats="2", delay="0.1")
    response = cluster.request(
        "POST", "/tasks", data=form, files={"wasm": ("hash.wasm", HASH_WASM)}
    )
    assert response.status_code == 201, response.text

    def done() -> dict[str, Any] | None:
        task = cluster.request("GET", "/tasks/after-hostile").json()
        return task if task["state"] in FINISHED else None

    task = cluster.wait_for(done, 30, "after-hostile")
    assert task["state"] == "succeeded"
    assert [run["result"] for run in task["runs"]] == ["2832", "2832"]
    assert_workers_alive(cluster)
