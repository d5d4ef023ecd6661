"""Headless Chromium (Debian's package) driven by Playwright, started inside
a test's network namespace (the driver and the browser inherit it, so
127.0.0.1 is that namespace's loopback). A missing chromium or playwright
skips the test, and fails it under CI=true (tests/ci.py)."""

from __future__ import annotations

import contextlib
import importlib
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from tests.ci import missing_dependency
from tests.netns import NetNS

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@contextlib.contextmanager
def chromium(netns: NetNS) -> Iterator[Any]:
    """A Playwright Browser running in `netns`, closed on exit."""
    if not Path(CHROMIUM).exists():
        missing_dependency("chromium is not installed (apt-get install chromium)")
    try:
        sync_api = importlib.import_module("playwright.sync_api")
    except ImportError as exc:
        missing_dependency(f"playwright is not installed ({exc})")
    with netns.entered():
        playwright = sync_api.sync_playwright().start()
    try:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()
    finally:
        playwright.stop()
