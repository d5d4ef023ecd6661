from __future__ import annotations

import contextlib
import itertools
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.e2e.cluster import Cluster, running_cluster
from tests.faults.harness import FAST_LIVENESS, Ledger


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
    numbers = itertools.count(1)
    with contextlib.ExitStack() as clusters:

        def make(*, workers: int = 2, concurrency: int = 1, **env: str) -> Cluster:
            state = tmp_path / f"cluster{next(numbers)}"
            state.mkdir()
            return clusters.enter_context(
                running_cluster(
                    state, workers=workers, concurrency=concurrency, **{**FAST_LIVENESS, **env}
                )
            )

        yield make
