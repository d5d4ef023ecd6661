"""What every test of a compat module checks: the version it was written for
is the one requirements.txt pins, its guard refuses any other at import, and
no module outside it uses the private names it guards."""

from __future__ import annotations

import importlib.metadata
import importlib.util
import re
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[2]
APPS = ("wwproject", "tasks_app", "cluster_app", "workers", "bench")


def pinned(distribution: str) -> str:
    """The version requirements.txt pins for `distribution`."""
    for line in (ROOT / "requirements.txt").read_text().splitlines():
        name, sep, version = line.split("#")[0].strip().partition("==")
        if sep and name.split("[")[0].lower() == distribution.lower():
            return version.strip()
    raise AssertionError(f"requirements.txt pins no {distribution}")


def import_with_installed(
    monkeypatch: pytest.MonkeyPatch, module: ModuleType, installed: str
) -> ModuleType:
    """Run `module`'s file afresh (under another name, so the loaded module
    and its classes stay as they are) as if `installed` were the version of
    every distribution."""
    monkeypatch.setattr(importlib.metadata, "version", lambda _name: installed)
    assert module.__file__ is not None
    spec = importlib.util.spec_from_file_location(f"fresh_{module.__name__}", module.__file__)
    assert spec is not None and spec.loader is not None
    fresh = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(fresh)
    return fresh


def users_of(pattern: str) -> set[str]:
    """The project's source files (relative paths) matching `pattern`."""
    found = set()
    for app in APPS:
        for path in (ROOT / app).rglob("*.py"):
            if re.search(pattern, path.read_text()):
                found.add(str(path.relative_to(ROOT)))
    return found
