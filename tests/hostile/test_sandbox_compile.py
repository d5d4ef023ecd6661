"""Modules that are costly to compile, uploaded to a real gateway (with one
worker) in a private network namespace: each is refused with a 400 naming
the limit it is over, the gateway's own memory stays bounded while it checks
them (compiling happens in a bounded child process), and the gateway still
accepts and runs a good task afterwards."""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from tests.e2e.cluster import PROJECT_ROOT, Cluster, running_cluster, seed_form
from tests.hostile.memory import rss_mb
from tests.security import hostile

HASH_WASM = (PROJECT_ROOT / "hash.wasm").read_bytes()
GATEWAY_RSS_BOUND_MB = 500
FINAL = {"succeeded", "failed", "timed_out", "cancelled"}


class PeakRss:
    """Samples a process's VmRSS on a thread while inside; `peak` is the highest seen."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.peak = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while True:
            self.peak = max(self.peak, rss_mb(self.pid))
            if self._stop.wait(0.05):
                return

    def __enter__(self) -> PeakRss:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, rss_mb(self.pid))


def post(cluster: Cluster, task_id: str, wasm: bytes) -> Any:
    form = seed_form(id=task_id, start="0", repeats="1", delay="0", duration="30")
    files = {"wasm": (f"{task_id}.wasm", bytes(wasm))}
    return cluster.request("POST", "/tasks", data=form, files=files)


def assert_refused(response: Any, problem: str) -> None:
    assert response.status_code == 400, response.text
    body = response.json()
    assert body["field"] == "wasm"
    assert re.fullmatch(problem, body["problem"]), body["problem"]


def assert_serves_a_good_task(cluster: Cluster, task_id: str) -> None:
    response = post(cluster, task_id, HASH_WASM)
    assert response.status_code == 201, response.text

    def done() -> dict[str, Any] | None:
        task: dict[str, Any] = cluster.request("GET", f"/tasks/{task_id}").json()
        return task if task["state"] in FINAL else None

    task = cluster.wait_for(done, 30, task_id)
    assert (task["state"], task["runs"][0]["result"]) == ("succeeded", "2832")


def gateway_pid(cluster: Cluster) -> int:
    assert cluster.gateway is not None
    return cluster.gateway.pid


@pytest.fixture(scope="module")
def counting(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    """A gateway that takes modules of at most 1,000 functions."""
    with running_cluster(
        tmp_path_factory.mktemp("sandbox-count"), workers=1, WW_MODULE_MAX_FUNCTIONS="1000"
    ) as cluster:
        yield cluster


@pytest.fixture(scope="module")
def compiling(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    """A gateway whose checks may compile for 2 s in 256 MiB (low, to keep the test quick)."""
    with running_cluster(
        tmp_path_factory.mktemp("sandbox-compile"),
        workers=1,
        WW_MODULE_MAX_FUNCTIONS="1000000",
        WW_MODULE_COMPILE_SECONDS="2",
        WW_MODULE_COMPILE_BYTES=str(256 * 1024 * 1024),
    ) as cluster:
        yield cluster


def test_module_of_too_many_functions_is_refused_before_compiling(counting: Cluster) -> None:
    with PeakRss(gateway_pid(counting)) as rss:
        response = post(counting, "many-functions", hostile.many_functions(5000))
    assert_refused(response, r"module too complex: 5001 functions, over the limit of 1000")
    assert rss.peak < GATEWAY_RSS_BOUND_MB
    assert counting.request("GET", "/tasks/many-functions").status_code == 404
    assert_serves_a_good_task(counting, "after-many-functions")


def test_module_slow_to_compile_is_refused_naming_the_time_limit(compiling: Cluster) -> None:
    # 2,400 functions of 1,000 additions: ~8 s to compile on one core (900 took
    # 1.5-3 s, too near the 2 s limit on a fast moment), ~100 MB; ~10 MB of module.
    with PeakRss(gateway_pid(compiling)) as rss:
        response = post(compiling, "slow", hostile.large_functions(2400, 1000))
    assert_refused(response, r"module too complex: compiling took over 2 s")
    assert rss.peak < GATEWAY_RSS_BOUND_MB
    assert compiling.request("GET", "/tasks/slow").status_code == 404
    assert_serves_a_good_task(compiling, "after-slow")


def test_module_needing_much_memory_to_compile_is_refused_naming_the_limit(
    compiling: Cluster,
) -> None:
    # 300,000 tiny functions: ~1.6 GB to compile (the gateway compiled such
    # modules itself before, and held the memory after).
    with PeakRss(gateway_pid(compiling)) as rss:
        response = post(compiling, "big", hostile.many_functions(300_000))
    assert_refused(response, r"module too complex: compiling needed over 256 MiB")
    assert rss.peak < GATEWAY_RSS_BOUND_MB
    assert compiling.request("GET", "/tasks/big").status_code == 404
    assert_serves_a_good_task(compiling, "after-big")
