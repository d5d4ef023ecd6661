"""Where the ASGI entry point goes below Django's public API, in one guarded
place: `ThreadedDjangoHandler`, Django's `ASGIHandler` run the way a WSGI
server runs Django.

It re-does `ASGIHandler.handle` with Django's own pieces (`read_body`,
`create_request`, `get_response`, `send_response`, `get_script_prefix`,
`chunk_size`, the response's `_handler_class`) and starts as a
`BaseHandler`, not through `ASGIHandler.__init__`: none of that is promised
to stay, so importing this module checks that the installed Django is the
one this was written against (requirements.txt pins it); on any other
version it refuses to load, naming both. No other module touches these
names (tests/unit/test_compat_django.py checks both).
"""

from __future__ import annotations

import contextvars
import importlib.metadata
from collections.abc import Awaitable, Callable
from typing import IO, Any, TypeVar

WRITTEN_FOR = "5.2.19"


class DjangoVersionError(ImportError):
    """The installed Django is not the one this module was written for."""


def check_version(installed: str) -> None:
    if installed != WRITTEN_FOR:
        raise DjangoVersionError(
            f"wwproject/compat_django.py was written for Django {WRITTEN_FOR} "
            f"(ASGIHandler's read_body, create_request, send_response, "
            f"BaseHandler.__init__) but Django {installed} is installed: install "
            f"Django=={WRITTEN_FOR} (requirements.txt), or check each use in this "
            f"module against {installed} and update WRITTEN_FOR"
        )


check_version(importlib.metadata.version("Django"))

from concurrent.futures import ThreadPoolExecutor  # noqa: E402

from asgiref.sync import sync_to_async  # noqa: E402
from django.core import signals  # noqa: E402
from django.core.exceptions import RequestAborted  # noqa: E402
from django.core.handlers import base  # noqa: E402
from django.core.handlers.asgi import ASGIHandler, get_script_prefix  # noqa: E402
from django.http import FileResponse, HttpResponseBase  # noqa: E402
from django.urls import set_script_prefix  # noqa: E402

T = TypeVar("T")
BeforeResponse = Callable[[], Awaitable[None]]


class ThreadedDjangoHandler(ASGIHandler):
    """Django's ASGI handler, run the way a WSGI server runs Django.

    The body is read on the event loop; then the whole request (signals,
    middleware, view, rendering) runs in one call on one of a few long-lived
    threads, each keeping its database connection across requests (Django's
    connections are thread-local; `CONN_MAX_AGE`), as a WSGI worker thread
    does. Django's own handler, with our sync middleware and views, instead
    hops between the loop and a new per-request thread for every middleware
    hook (about 15 hops) and so opens a database connection per request: most
    of a small request's cost.

    `before_response`, when given, is awaited on the loop between the
    response being ready and its being written (the gateway lets the runs a
    request handed to its scheduler go out first).
    """

    def __init__(self, *, threads: int, before_response: BeforeResponse | None = None) -> None:
        base.BaseHandler.__init__(self)
        self.load_middleware(is_async=False)
        self._pool = ThreadPoolExecutor(threads, thread_name_prefix="django-http")
        self._before_response = before_response

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            raise ValueError(f"Django can only handle ASGI/HTTP connections, not {scope['type']}")
        try:
            body = await self.read_body(receive)
        except RequestAborted:
            return
        try:
            response = await self.in_thread(self._respond, scope, body)
            if self._before_response is not None:
                await self._before_response()
            try:
                await self.send_response(response, send)
            finally:
                if response.streaming:
                    await self.in_thread(response.close)
        finally:
            body.close()

    async def in_thread(self, fn: Callable[..., T], *args: Any) -> T:
        """`fn(*args)` on one of the request threads (each keeps its
        database connection), awaited."""
        # The request's context holds nothing the thread needs: an empty one
        # spares copying it there and back.
        call = sync_to_async(
            fn, thread_sensitive=False, executor=self._pool, context=contextvars.Context()
        )
        return await call(*args)

    def _respond(self, scope: dict[str, Any], body: IO[bytes]) -> HttpResponseBase:
        set_script_prefix(get_script_prefix(scope))
        signals.request_started.send(sender=self.__class__, scope=scope)
        request, response = self.create_request(scope, body)
        if request is not None:
            response = self.get_response(request)
        assert response is not None  # create_request gives a request or a response
        response._handler_class = self.__class__  # type: ignore[attr-defined]  # Django's own mark
        if isinstance(response, FileResponse):
            response.block_size = self.chunk_size
        if not response.streaming:
            response.close()  # the content is built: request_finished now, in this thread
        return response
