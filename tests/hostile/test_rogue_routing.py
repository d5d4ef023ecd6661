"""A hostile member offering oversized labels or queues (10**6 labels,
10**6 queues, a 1 MB label value: tests/hostile/rogue_worker.py, a real
process) next to one honest worker, against a real gateway: its offer is
refused, without the gateway reading what it offers (its memory stays
bounded), it is disconnected, it never gets a run, and the honest worker
serves every run."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.cluster import Cluster, running_cluster
from tests.hostile.memory import rss_mb
from tests.hostile.test_rogue_member import RSS_BOUND_MB, _finished, _rogue, _submit


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Cluster]:
    with running_cluster(tmp_path, workers=1, concurrency=2) as cluster:
        yield cluster


@pytest.mark.parametrize(
    ("mode", "reason"),
    [
        ("labels", "it offers 1000000 labels, over 64"),
        ("queues", "it offers 1000000 queues, over 32"),
        ("long_label", "label 'gpu' has a value over 200 bytes"),
    ],
)
def test_an_oversized_offer_is_refused_and_gets_no_run(
    cluster: Cluster, mode: str, reason: str
) -> None:
    assert cluster.gateway is not None
    rogue = _rogue(cluster, mode)
    cluster.wait_for(lambda: reason in cluster.gateway_log(), 60, "the offer to be refused")
    rogue.wait_for_line(lambda s: s == "rogue disconnected", 30)
    _submit(cluster, f"{mode}-runs", repeats="10")
    assert _finished(cluster, f"{mode}-runs") == [("succeeded", "2832")] * 10
    assert rss_mb(cluster.gateway.pid) < RSS_BOUND_MB
    assert "forged-by-rogue" not in cluster.gateway_log()
    workers = cluster.request("GET", "/workers").json()
    assert len(workers) == 1  # the rogue was never registered
    rogue.popen.kill()
    rogue.popen.wait(10)
