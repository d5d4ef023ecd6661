"""Fixtures of the client and Django Tasks tests."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer

from tests.e2e.cluster import PROJECT_ROOT

HASH_WASM = PROJECT_ROOT / "hash.wasm"


@pytest.fixture
def tasks_in_database(settings: Any) -> Iterator[None]:
    """TASKS naming ClusterBackend without a URL (this project's database)
    as the default backend, for the test only."""
    settings.TASKS = {"default": {"BACKEND": "tasks_app.django_tasks.ClusterBackend"}}
    yield


@pytest.fixture
def layer() -> Iterator[Any]:
    """The (in-memory) channel layer, empty before and after the test."""
    layer = get_channel_layer()
    async_to_sync(layer.flush)()
    yield layer
    async_to_sync(layer.flush)()
