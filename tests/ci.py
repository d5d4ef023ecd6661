"""A test that cannot find what it needs (root, network namespaces, a
browser, PostgreSQL, ...) skips on a developer's machine but fails under
CI: a CI machine is provisioned to have all of it, so a skip there would
hide a broken provisioning behind a green run."""

from __future__ import annotations

import os
from typing import NoReturn

import pytest

# Values of CI that mean "not CI" (CI=false, CI=0 or an empty CI=).
_NOT_CI = {"", "0", "false", "no", "off"}


def under_ci() -> bool:
    """True when the CI environment variable is set to a true value (CI=true)."""
    return os.environ.get("CI", "").strip().lower() not in _NOT_CI


def missing_dependency(reason: str) -> NoReturn:
    """Skip the calling test because `reason`; fail it instead under CI=true."""
    if under_ci():
        pytest.fail(f"{reason} (CI=true: a missing dependency fails the run)", pytrace=False)
    pytest.skip(reason)
