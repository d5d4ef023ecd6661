"""A missing dependency skips a test on a developer's machine and fails it
under CI=true (tests/ci.py), for every test that uses the helper."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from tests.ci import missing_dependency, under_ci
from tests.netns import new_netns

FAILED = pytest.fail.Exception
SKIPPED = pytest.skip.Exception


def outcome(call: Callable[[], object]) -> tuple[type[BaseException], str]:
    """What `call` ends the test with: pytest's Failed or Skipped, and why.
    Caught here, so that a wrong skip fails this test instead of skipping it."""
    try:
        call()
    except (FAILED, SKIPPED) as exc:
        return type(exc), str(exc)
    raise AssertionError("neither skipped nor failed")


@pytest.mark.parametrize("value", ["true", "TRUE", "1", "yes"])
def test_under_ci_a_missing_dependency_fails_the_test(
    monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    monkeypatch.setenv("CI", value)
    assert under_ci()
    kind, why = outcome(lambda: missing_dependency("chromium is not installed"))
    assert kind is FAILED
    assert "chromium is not installed" in why


@pytest.mark.parametrize("value", [None, "", "false", "0", "no"])
def test_elsewhere_a_missing_dependency_skips_the_test(
    monkeypatch: pytest.MonkeyPatch, value: str | None
) -> None:
    if value is None:
        monkeypatch.delenv("CI", raising=False)
    else:
        monkeypatch.setenv("CI", value)
    assert not under_ci()
    kind, why = outcome(lambda: missing_dependency("chromium is not installed"))
    assert kind is SKIPPED
    assert "chromium is not installed" in why


def test_a_namespace_that_cannot_be_made_fails_under_ci(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """No `ip` on PATH (or no root): new_netns() cannot make a namespace,
    and under CI=true that is a failure, not a skip."""
    monkeypatch.setenv("PATH", str(tmp_path))  # an empty directory: no `ip` command
    monkeypatch.setenv("CI", "true")
    kind, why = outcome(new_netns)
    assert kind is FAILED
    assert "network namespaces unavailable" in why
    monkeypatch.setenv("CI", "false")
    assert outcome(new_netns)[0] is SKIPPED
