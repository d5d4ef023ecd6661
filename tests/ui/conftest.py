"""One live cluster for the package: a gateway and two workers in a private
network namespace, with the embedded defaults (SQLite, in-memory channel
layer), so the live event path is the one a single gateway uses."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.e2e.cluster import Cluster, running_cluster


@pytest.fixture(scope="package")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    with running_cluster(tmp_path_factory.mktemp("ui"), workers=2) as cluster:
        yield cluster
