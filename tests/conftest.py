"""Shared pytest fixtures."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.netns import NetNS, NetNSUnavailable


@pytest.fixture
def netns() -> Iterator[NetNS]:
    """A private network namespace (loopback only); skips where none can be made."""
    try:
        ns = NetNS()
    except (NetNSUnavailable, OSError) as exc:
        pytest.skip(f"network namespaces unavailable: {exc}")
    try:
        yield ns
    finally:
        ns.close()
