from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.e2e.cluster import Cluster
from tests.faults.harness import FAST_LIVENESS, Ledger
from tests.netns import NetNS, NetNSUnavailable


@pytest.fixture(scope="session")
def ledger() -> Iterator[Ledger]:
    ledger = Ledger()
    yield ledger
    if ledger.tests:
        path = ledger.write()
        print(
            f"\nfault injection: {ledger.faults} faults, {ledger.runs} runs scheduled, "
            f"{ledger.completed} completed, lost={ledger.lost}, "
            f"double-counted={ledger.double_counted} ({path})"
        )


@pytest.fixture
def make_cluster(tmp_path: Path) -> Iterator[Callable[..., Cluster]]:
    """Start a gateway and workers in a fresh network namespace; everything
    is stopped by PID when the test ends, whatever happened."""
    spaces: list[NetNS] = []

    def make(*, workers: int = 2, concurrency: int = 1, **env: str) -> Cluster:
        try:
            ns = NetNS()
        except (NetNSUnavailable, OSError) as exc:
            pytest.skip(f"network namespaces unavailable: {exc}")
        spaces.append(ns)
        state = tmp_path / f"cluster{len(spaces)}"
        state.mkdir()
        cluster = Cluster(ns, state, **{**FAST_LIVENESS, **env})
        cluster.start_gateway()
        for _ in range(workers):
            cluster.wait_joined(cluster.start_worker("--concurrency", str(concurrency)))
        return cluster

    yield make
    for ns in spaces:
        ns.close()
