"""The seed's walkthrough, end to end, with real processes in a private
network namespace: a gateway and two workers started with --dial PEERID
(found by multicast, no --addr), the seed's curl as a real HTTP request,
casm_ls listening beside them."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
import wasmtime

from tests.e2e.cluster import PROJECT_ROOT, Cluster, seed_form
from tests.netns import new_netns

HASH_WASM = PROJECT_ROOT / "hash.wasm"
HASH_CMD_WASM = PROJECT_ROOT / "examples" / "hash" / "hash_cmd.wasm"

TRAP_WAT = """
(module
  (func (export "run") (param i64 i64) (result i64)
    unreachable))
"""


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    ns = new_netns()
    try:
        cluster = Cluster(ns, tmp_path_factory.mktemp("seed-flow"))
        cluster.casm = cluster.manage("casm_ls")  # type: ignore[attr-defined]
        cluster.start_gateway()
        for _ in range(2):
            cluster.wait_joined(cluster.start_worker("--concurrency", "1"))
        yield cluster
    finally:
        ns.close()


def _task(cluster: Cluster, task_id: str) -> dict:
    response = cluster.request("GET", f"/tasks/{task_id}")
    assert response.status_code == 200, response.text
    return response.json()


def _finished(cluster: Cluster, task_id: str) -> dict | None:
    task = _task(cluster, task_id)
    return task if task["state"] in {"succeeded", "failed", "cancelled"} else None


def test_seed_curl_runs_three_times_over_both_workers(cluster: Cluster) -> None:
    response = cluster.request(
        "POST", "/tasks", data=seed_form(), files={"wasm": ("hash.wasm", HASH_WASM.read_bytes())}
    )
    assert response.status_code == 201, response.text
    assert response.json()["id"] == "task1"

    def completions() -> int | None:
        listing = cluster.request("GET", "/tasks").json()
        assert isinstance(listing, list)
        (task,) = [t for t in listing if t["id"] == "task1"]
        return task["completions"] if task["completions"] == 3 else None

    assert cluster.wait_for(completions, 30, "3 completions") == 3

    task = _task(cluster, "task1")
    runs = task["runs"]
    assert [run["index"] for run in runs] == [0, 1, 2]
    assert all(run["state"] == "succeeded" for run in runs)
    assert all(run["result"] == "2832" for run in runs)
    workers = {peer for _, peer in cluster.workers}
    assert {run["worker"] for run in runs} == workers  # spread over both
    for run in runs:
        assert run["started_at"] is not None and run["finished_at"] is not None
        assert run["started_at"] >= run["due_at"]  # never early
    # The seed's delay: run k is due 2 s after run k-1.
    assert runs[0]["due_at"] < runs[1]["due_at"] < runs[2]["due_at"]


def test_casm_ls_prints_surveys_and_responses(cluster: Cluster) -> None:
    casm = cluster.casm  # type: ignore[attr-defined]
    for _, worker in cluster.workers:
        casm.wait_for_line(lambda s, w=worker: s.strip() == f"peer:      {w}", 10)
    text = casm.output()
    blocks = text.split("\n\n")

    def kinds_for(peer: str) -> set[str]:
        found = set()
        for block in blocks:
            if f"peer:      {peer}" in block:
                match = re.search(r"type:\s+(\w+)", block)
                if match:
                    found.add(match.group(1))
        return found

    for _, worker in cluster.workers:
        assert "survey" in kinds_for(worker)
    assert "response" in kinds_for(cluster.peer_id)
    assert re.search(r"\[\d{4}\] Got multicast packet \(\d+ byte\)\n  type:      survey", text)


def test_wasi_command_module_prints_its_result(cluster: Cluster) -> None:
    form = seed_form(id="wasi1", start="0", repeats="1")
    response = cluster.request(
        "POST", "/tasks", data=form, files={"wasm": ("cmd.wasm", HASH_CMD_WASM.read_bytes())}
    )
    assert response.status_code == 201, response.text
    task = cluster.wait_for(lambda: _finished(cluster, "wasi1"), 30, "wasi1 to finish")
    (run,) = task["runs"]
    assert run["state"] == "succeeded", run
    assert run["result"].strip() == "2832"
    assert run["attempts"][0]["exit_code"] == 0


def test_trapping_module_fails_its_run_and_workers_keep_serving(cluster: Cluster) -> None:
    trap = wasmtime.wat2wasm(TRAP_WAT)
    response = cluster.request(
        "POST",
        "/tasks",
        data=seed_form(id="trap1", start="0", repeats="2", delay="0.2"),
        files={"wasm": ("trap.wasm", bytes(trap))},
    )
    assert response.status_code == 201, response.text
    task = cluster.wait_for(lambda: _finished(cluster, "trap1"), 30, "trap1 to finish")
    assert task["state"] == "failed"
    for run in task["runs"]:
        assert run["state"] == "failed"
        assert "unreachable" in run["error"]
        assert len(run["attempts"]) == 1  # a trap is deterministic: not retried

    # Both workers still serve: a new task succeeds afterwards.
    response = cluster.request(
        "POST",
        "/tasks",
        data=seed_form(id="after-trap", start="0", repeats="2", delay="0.1"),
        files={"wasm": ("hash.wasm", HASH_WASM.read_bytes())},
    )
    assert response.status_code == 201, response.text
    task = cluster.wait_for(lambda: _finished(cluster, "after-trap"), 30, "after-trap")
    assert task["state"] == "succeeded"
    assert all(proc.popen.poll() is None for proc, _ in cluster.workers)


def test_bad_submissions_get_clear_errors_and_store_nothing(cluster: Cluster) -> None:
    not_wasm = cluster.request(
        "POST", "/tasks", data=seed_form(id="bad1"), files={"wasm": ("x.wasm", b"hello")}
    )
    assert not_wasm.status_code == 400
    assert not_wasm.json()["field"] == "wasm"

    # Its own first task (start in a minute: it need not run), then the same id again.
    first = cluster.request(
        "POST",
        "/tasks",
        data=seed_form(id="dup1", start="60", repeats="1"),
        files={"wasm": ("h.wasm", HASH_WASM.read_bytes())},
    )
    assert first.status_code == 201, first.text
    duplicate = cluster.request(
        "POST",
        "/tasks",
        data=seed_form(id="dup1"),
        files={"wasm": ("h.wasm", HASH_WASM.read_bytes())},
    )
    assert duplicate.status_code == 409
    assert duplicate.json()["field"] == "id"

    assert cluster.request("GET", "/tasks/bad1").status_code == 404
    # The gateway is still up and answers.
    assert cluster.request("GET", "/tasks/").status_code == 200
