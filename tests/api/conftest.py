"""Fixtures shared by the REST/admin tests."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer


@pytest.fixture
def layer() -> Iterator[Any]:
    """The (in-memory) channel layer, empty before and after the test."""
    layer = get_channel_layer()
    async_to_sync(layer.flush)()
    yield layer
    async_to_sync(layer.flush)()
