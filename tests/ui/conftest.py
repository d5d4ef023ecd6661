"""One live cluster for the package: a gateway and two workers in a private
network namespace, with the embedded defaults (SQLite, in-memory channel
layer), so the live event path is the one a single gateway uses."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.e2e.cluster import Cluster
from tests.netns import NetNS, NetNSUnavailable


@pytest.fixture(scope="package")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    try:
        ns = NetNS()
    except (NetNSUnavailable, OSError) as exc:
        pytest.skip(f"network namespaces unavailable: {exc}")
    try:
        cluster = Cluster(ns, tmp_path_factory.mktemp("ui"))
        cluster.start_gateway()
        for _ in range(2):
            cluster.wait_joined(cluster.start_worker("--concurrency", "1"))
        yield cluster
    finally:
        ns.close()
