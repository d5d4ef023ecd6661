"""`POST /tasks` the short way, for the request a client then waits on.

A plain submission (the seed's form as curl, httpx, requests or a script
sends it, anonymous where anonymous writes are allowed) is read on the
event loop, stored (on SQLite, by the event loop itself on a connection
of its own, which never waits: tasks_app.loop_db; else, or when that
cannot, on a request thread), handed to the scheduler, and
answered with the same 201 as TaskListView's: the same body, rendered by
the same serializer and renderer, and the headers Django's middleware and
DRF give it. It skips what such a request does not use — the middleware
chain, DRF's request and authentication, a second thread hop to render —
and its run is on the wire before the response is rendered. Everything
else goes to Django untouched: other paths and methods, any cookie or
Authorization header, an Accept header asking for more than JSON, a query
string, a browser's write from another origin (Django's middleware refuses
it with the rule of tasks_app/api/origin.py), a form that is not plainly
valid (Django then answers with its own error), and a task the database
refuses (nothing was stored: Django tries it and says why)."""

from __future__ import annotations

import sqlite3
from collections.abc import Awaitable, Callable
from typing import Any

from django.conf import settings
from django.core.exceptions import DisallowedHost
from django.db import DatabaseError, close_old_connections
from django.http import HttpRequest
from rest_framework.renderers import JSONRenderer

from tasks_app import notify, selectors
from tasks_app.api.origin import cross_site_problem, trusted_origins
from tasks_app.api.permissions import writes_need_auth
from tasks_app.api.serializers import task_summary
from tasks_app.api.submission import (
    Submission,
    plain_boundary,
    plain_submission,
    submit,
    submit_here,
)
from tasks_app.api.views import TaskListView
from tasks_app.exceptions import InvalidField, ModuleTooLarge, TaskAlreadyExists, WriteElsewhere
from tasks_app.loop_db import LoopDatabase, loop_database
from tasks_app.models import Task

ASGIApp = Callable[[dict[str, Any], Any, Any], Awaitable[None]]
InThread = Callable[..., Awaitable[Any]]

_JSON = "application/json"
_ACCEPTED = {None, b"*/*", b"application/json"}


class SubmissionLane:
    """ASGI middleware in front of Django for plain `POST /tasks`."""

    def __init__(self, app: ASGIApp, *, in_thread: InThread) -> None:
        self.app = app
        self._in_thread = in_thread
        self._renderer = JSONRenderer()
        self._headers = _response_headers()
        # Opened on first use, in the loop's thread (and once the test
        # database, if any, is set up); False: not SQLite.
        self._loop_db: LoopDatabase | bool | None = None

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        boundary = _plain_post(scope) if self._headers is not None else None
        if boundary is None:
            return await self.app(scope, receive, send)
        body = await _read_body(receive)
        if body is None:
            return None  # the client went away
        submission = plain_submission(body, boundary)
        if submission is None:
            return await self.app(scope, _replay(body, receive), send)
        task = await self._store(submission)
        if task is None:
            return await self.app(scope, _replay(body, receive), send)
        await notify.dispatch_turns()
        payload = self._renderer.render(task_summary(selectors.as_new(task)), _JSON)
        assert self._headers is not None
        await send(
            {
                "type": "http.response.start",
                "status": 201,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"location", f"/tasks/{task.pk}".encode()),
                    *self._headers,
                    (b"content-length", str(len(payload)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": payload})
        return None

    async def _store(self, submission: Submission) -> Task | None:
        """The task stored and its runs handed over: on this loop's own
        SQLite connection where it can (tasks_app.loop_db), else on a
        request thread. None if it was refused (nothing is stored then)."""
        if self._loop_db is None:
            self._loop_db = loop_database() or False
        if isinstance(self._loop_db, LoopDatabase):
            try:
                return await submit_here(self._loop_db, submission)
            except WriteElsewhere:
                pass  # a new module, or the database busy: the thread's way
            except (TaskAlreadyExists, ModuleTooLarge, sqlite3.Error):
                return None
        return await self._in_thread(_store_in_thread, submission)


def _store_in_thread(submission: Submission) -> Task | None:
    """On a request thread: what TaskListView.post does between reading the
    form and answering. None if the task was refused (a duplicate id, an
    invalid module, a database error): nothing is stored then."""
    close_old_connections()  # as a request's start would: a broken or old one goes
    try:
        return submit(submission)
    except (TaskAlreadyExists, InvalidField, ModuleTooLarge, DatabaseError):
        return None  # one transaction: nothing is stored, and Django's way says why


def _plain_post(scope: dict[str, Any]) -> bytes | None:
    """The multipart delimiter when `scope` is a request this lane takes."""
    if (
        scope["type"] != "http"
        or scope["method"] != "POST"
        or scope["path"] != "/tasks"
        or scope.get("query_string")
        or scope.get("root_path")
    ):
        return None
    headers: dict[bytes, bytes] = {}
    for name, value in scope["headers"]:
        if name in headers:  # a header twice: Django's reading of it decides
            return None
        headers[name] = value
    if (
        b"cookie" in headers
        or b"authorization" in headers
        or headers.get(b"accept") not in _ACCEPTED
        or not _allowed_host(scope, headers)
        or _cross_site(scope, headers)
        or writes_need_auth()
    ):
        return None
    content_length = headers.get(b"content-length")
    return plain_boundary(
        headers.get(b"content-type", b"").decode("latin-1"),
        None if content_length is None else content_length.decode("latin-1"),
    )


def _allowed_host(scope: dict[str, Any], headers: dict[bytes, bytes]) -> bool:
    """Whether Django would accept the request's host (ALLOWED_HOSTS)."""
    request = HttpRequest()
    if b"host" in headers:
        request.META["HTTP_HOST"] = headers[b"host"].decode("latin-1")
    server = scope.get("server") or ("", 0)
    request.META["SERVER_NAME"], request.META["SERVER_PORT"] = server[0], str(server[1])
    try:
        request.get_host()
    except DisallowedHost:
        return False
    return True


def _cross_site(scope: dict[str, Any], headers: dict[bytes, bytes]) -> bool:
    """Whether the origin rule (tasks_app/api/origin.py) refuses the
    request: Django's middleware then answers its 403."""
    origin, fetch_site = headers.get(b"origin"), headers.get(b"sec-fetch-site")
    if origin is None and fetch_site is None:
        return False  # not a browser's request: the common case, decided at once
    host = headers.get(b"host", b"").decode("latin-1")
    return (
        cross_site_problem(
            method=scope["method"],
            origin=None if origin is None else origin.decode("latin-1"),
            fetch_site=None if fetch_site is None else fetch_site.decode("latin-1"),
            own_origin=f"{scope.get('scheme', 'http')}://{host}",
            trusted=trusted_origins(),
        )
        is not None
    )


async def _read_body(receive: Any) -> bytes | None:
    chunks = []
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return None
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(chunks)


def _replay(body: bytes, receive: Any) -> Any:
    """A `receive` that gives `body` first, then whatever follows."""
    sent = False

    async def replay() -> dict[str, Any]:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay


def _response_headers() -> list[tuple[bytes, bytes]] | None:
    """The headers Django's middleware and DRF give TaskListView's 201,
    besides its type, location and length; None (the lane stays shut) where
    the settings make them depend on the request (HTTPS redirects, HSTS)."""
    if settings.SECURE_SSL_REDIRECT or settings.SECURE_HSTS_SECONDS:
        return None
    view = TaskListView()
    view.setup(HttpRequest())  # as Django's dispatch does: HEAD where there is GET
    headers = [
        # DRF varies on Accept; the session middleware on Cookie (read by
        # the session authentication).
        (b"vary", b"Accept, Cookie"),
        (b"allow", ", ".join(view.allowed_methods).encode()),
    ]
    if "django.middleware.clickjacking.XFrameOptionsMiddleware" in settings.MIDDLEWARE:
        headers.append((b"x-frame-options", settings.X_FRAME_OPTIONS.upper().encode()))
    if "django.middleware.security.SecurityMiddleware" in settings.MIDDLEWARE:
        if settings.SECURE_CONTENT_TYPE_NOSNIFF:
            headers.append((b"x-content-type-options", b"nosniff"))
        if settings.SECURE_REFERRER_POLICY:
            policy = settings.SECURE_REFERRER_POLICY
            if not isinstance(policy, str):
                policy = ",".join(policy)
            headers.append((b"referrer-policy", policy.encode()))
        if settings.SECURE_CROSS_ORIGIN_OPENER_POLICY:
            headers.append(
                (b"cross-origin-opener-policy", settings.SECURE_CROSS_ORIGIN_OPENER_POLICY.encode())
            )
    return headers
