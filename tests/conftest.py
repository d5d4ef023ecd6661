"""Shared pytest fixtures."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from hypothesis import settings

from tests.netns import NetNS, new_netns

# Property tests: a few hundred examples in CI; `HYPOTHESIS_PROFILE=fuzz`
# for a long fuzz run of the codecs (packet decoder, multiaddr parser).
settings.register_profile("ci", max_examples=300, deadline=None)
settings.register_profile("fuzz", max_examples=50_000, deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


@pytest.fixture
def netns() -> Iterator[NetNS]:
    """A private network namespace (loopback only); skips where none can be
    made, fails there under CI=true."""
    ns = new_netns()
    try:
        yield ns
    finally:
        ns.close()


@pytest.fixture(autouse=True)
def http_bound_to_loopback(monkeypatch: pytest.MonkeyPatch) -> None:
    """Requests made with Django's test client stand for the loopback default.

    `rungateway --http 127.0.0.1:...` sets its bind address at start-up
    (permissions.set_http_bind), and with WW_WRITES_NEED_AUTH=auto anonymous
    writes are then allowed (tasks_app/api/permissions). The test client has
    no server, so each test starts as if bound to loopback; tests/security
    changes this.
    """
    from tasks_app.api import permissions

    monkeypatch.setattr(permissions, "http_bind", "127.0.0.1")
