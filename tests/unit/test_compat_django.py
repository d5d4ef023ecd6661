"""wwproject.compat_django: Django's ASGI handler run as a WSGI server runs
Django (the whole request on one long-lived thread), guarded by Django's
version."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import pytest
from django.core import signals

from tests.unit.compat import import_with_installed, pinned, users_of
from wwproject import compat_django
from wwproject.compat_django import ThreadedDjangoHandler


def test_written_for_the_pinned_django() -> None:
    assert compat_django.WRITTEN_FOR == pinned("Django")


def test_another_django_is_refused_at_import(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ImportError, match=r"written for Django 5\.2\.19") as err:
        import_with_installed(monkeypatch, compat_django, "5.2.20")
    assert type(err.value).__name__ == "DjangoVersionError"
    assert "Django 5.2.20 is installed" in str(err.value)


def test_no_other_module_uses_the_handlers_internals() -> None:
    pattern = (
        r"ASGIHandler|BaseHandler|\._handler_class|\.create_request\(|\.read_body\("
        r"|\.send_response\("
    )
    assert users_of(pattern) == {"wwproject/compat_django.py"}


def get(handler: ThreadedDjangoHandler, path: str, log: list[str]) -> int:
    """`GET path` through `handler`; its status. `log` gets the response's start."""
    status = 0

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]
            log.append("response written")

    scope = {
        "type": "http",
        "method": "GET",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "headers": [(b"host", b"127.0.0.1")],
        "server": ("127.0.0.1", 8080),
        "client": ("127.0.0.1", 50000),
        "scheme": "http",
        "root_path": "",
    }
    asyncio.run(handler(scope, receive, send))
    return status


def test_each_request_runs_whole_on_the_same_long_lived_thread() -> None:
    threads: list[str] = []

    def started(**_kw: Any) -> None:
        threads.append(threading.current_thread().name)

    signals.request_started.connect(started)
    try:
        handler = ThreadedDjangoHandler(threads=1)
        log: list[str] = []
        assert get(handler, "/no-such-page/", log) == 404
        assert get(handler, "/no-such-page/", log) == 404
    finally:
        signals.request_started.disconnect(started)
    assert len(threads) == 2 and threads[0] == threads[1]
    assert threads[0].startswith("django-http") and threads[0] != threading.current_thread().name


def test_the_response_is_written_after_the_runtimes_hook() -> None:
    log: list[str] = []

    async def before_response() -> None:
        log.append("hook")

    handler = ThreadedDjangoHandler(threads=1, before_response=before_response)
    assert get(handler, "/no-such-page/", log) == 404
    assert log == ["hook", "response written"]
    # Without a hook (a plain ASGI server), the response is simply written.
    log.clear()
    assert get(ThreadedDjangoHandler(threads=1), "/no-such-page/", log) == 404
    assert log == ["response written"]
