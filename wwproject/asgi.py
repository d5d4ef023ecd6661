"""ASGI entry point: HTTP (REST, admin) through Django, behind a request
size limit that answers 413 before reading an oversized body; static files
(admin, browsable API, Swagger UI, status page) served by the same process;
WebSockets (live run events) through Channels."""

from __future__ import annotations

import contextvars
import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import IO, Any, TypeVar

import django
from asgiref.sync import sync_to_async
from django.core import signals
from django.core.exceptions import RequestAborted
from django.core.handlers import base
from django.core.handlers.asgi import ASGIHandler, get_script_prefix
from django.http import FileResponse, HttpResponseBase
from django.urls import set_script_prefix

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "wwproject.settings")
django.setup(set_prefix=False)

T = TypeVar("T")


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
    """

    def __init__(self, *, threads: int) -> None:
        base.BaseHandler.__init__(self)
        self.load_middleware(is_async=False)
        self._pool = ThreadPoolExecutor(threads, thread_name_prefix="django-http")

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            raise ValueError(f"Django can only handle ASGI/HTTP connections, not {scope['type']}")
        try:
            body = await self.read_body(receive)
        except RequestAborted:
            return
        try:
            response = await self.in_thread(self._respond, scope, body)
            await notify.dispatch_turns()
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
        response._handler_class = self.__class__
        if isinstance(response, FileResponse):
            response.block_size = self.chunk_size
        if not response.streaming:
            response.close()  # the content is built: request_finished now, in this thread
        return response


from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from django.conf import settings  # noqa: E402
from django.contrib.staticfiles.handlers import ASGIStaticFilesHandler  # noqa: E402

from tasks_app import notify  # noqa: E402
from tasks_app.api.lane import SubmissionLane  # noqa: E402
from tasks_app.routing import origin_checked, websocket_urlpatterns  # noqa: E402
from wwproject.limits import BodySizeLimit  # noqa: E402

django_application = ThreadedDjangoHandler(threads=settings.WW_HTTP_THREADS)

application = ProtocolTypeRouter(
    {
        "http": BodySizeLimit(
            SubmissionLane(
                ASGIStaticFilesHandler(django_application), in_thread=django_application.in_thread
            ),
            limit=settings.WW_MODULE_MAX_BYTES + 1024 * 1024,
        ),
        "websocket": origin_checked(URLRouter(websocket_urlpatterns)),
    }
)
