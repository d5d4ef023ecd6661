"""How runs reach workers, end to end (real gateway and worker processes in
a private network namespace): a module's bytes travel to a worker once,
and short runs travel several to a call."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
import wasmtime

from tests.e2e.cluster import PROJECT_ROOT, Cluster, running_cluster, seed_form

HASH_WASM = (PROJECT_ROOT / "hash.wasm").read_bytes()
NOOP_WAT = """
(module
  (func (export "run") (param i64 i64) (result i64)
    local.get 0 local.get 1 i64.add))
"""
NOOP_WASM = bytes(wasmtime.wat2wasm(NOOP_WAT))


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    state_dir: Path = tmp_path_factory.mktemp("dispatch")
    with running_cluster(state_dir, workers=1, concurrency=2) as cluster:
        yield cluster


def _submit(cluster: Cluster, wasm: bytes, **form: str) -> str:
    response = cluster.request(
        "POST", "/tasks", data=seed_form(**form), files={"wasm": ("m.wasm", wasm)}
    )
    assert response.status_code == 201, response.text
    return form["id"]


def _all_succeeded(cluster: Cluster, task_id: str, runs: int) -> None:
    def done() -> bool:
        task = cluster.request("GET", f"/tasks/{task_id}?runs_limit=1000").json()
        return task["state"] in {"succeeded", "failed", "cancelled"} and task

    task = cluster.wait_for(done, 60, f"{task_id} to finish")
    assert [run["state"] for run in task["runs"]] == ["succeeded"] * runs


def _metric(cluster: Cluster, name: str) -> dict[str, float]:
    """Every sample of `name` on /metrics, by its label text."""
    text = cluster.request("GET", "/metrics").text
    return {
        labels: float(value)
        for labels, value in re.findall(rf"^{name}(\{{[^}}]*\}}|) (\S+)$", text, re.MULTILINE)
    }


def test_a_module_reaches_a_worker_once(cluster: Cluster) -> None:
    worker = cluster.workers[0][1]
    # Other tests of this module may have had their modules fetched already.
    before = _metric(cluster, "ww_module_fetches_total")
    _submit(cluster, HASH_WASM, id="once-a", start="0", delay="0.05", repeats="6")
    _submit(cluster, HASH_WASM, id="once-b", start="0", delay="0", repeats="4", input="7")
    _all_succeeded(cluster, "once-a", 6)
    _all_succeeded(cluster, "once-b", 4)
    after = _metric(cluster, "ww_module_fetches_total")
    label = f'{{worker="{worker}"}}'
    assert set(after) == {label}
    assert after[label] - before.get(label, 0.0) == 1.0


def test_short_runs_travel_several_to_a_call(cluster: Cluster) -> None:
    # A first task teaches the gateway that these runs are short.
    _submit(cluster, NOOP_WASM, id="learn", start="0", delay="0", repeats="5")
    _all_succeeded(cluster, "learn", 5)
    runs, calls = (
        _metric(cluster, "ww_runs_per_call_sum"),
        _metric(cluster, "ww_runs_per_call_count"),
    )
    _submit(cluster, NOOP_WASM, id="many", start="0", delay="0", repeats="300")
    _all_succeeded(cluster, "many", 300)
    runs = _metric(cluster, "ww_runs_per_call_sum")[""] - runs[""]
    calls = _metric(cluster, "ww_runs_per_call_count")[""] - calls[""]
    assert runs == 300
    assert calls < runs / 2, f"{calls} calls for {runs} runs"
