"""`POST /tasks` the short way, for the request a client then waits on.

A plain submission (the seed's form as curl, httpx, requests or a script
sends it, anonymous where anonymous writes are allowed) is read on the
event loop, stored (on SQLite, by the event loop itself on a connection
of its own, which never waits: tasks_app.loop_db; else, or when that
cannot, on a request thread), handed to the scheduler, and
answered with the same 201 as TaskListView's: the same body, rendered by
the same serializer and renderer, and the headers Django's handler gave
that view's 201 at start-up. It skips what such a request does not use —
the middleware chain, DRF's request and authentication, a second thread
hop to render — and its run is on the wire before the response is
rendered. Whether it may, and which requests Django's middleware and the
view's permissions would pass, is worked out at start-up from what is
configured (tasks_app/api/lane_admission.py): anything it does not know
turns it off. Everything else goes to Django untouched: other paths and
methods, any cookie, Authorization or Idempotency-Key header, an Accept header asking for
more than JSON, a query string, a request the middleware or permissions
would stop (a host not allowed, a browser's write from another origin),
a form that is not plainly valid (Django then answers with its own error),
and a task the database refuses (nothing was stored: Django tries it and
says why)."""

from __future__ import annotations

import sqlite3
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from django.db import DatabaseError, close_old_connections
from prometheus_client import Counter
from rest_framework.renderers import JSONRenderer

from tasks_app import notify, selectors
from tasks_app.api.lane_admission import PATH, Admission, GetResponse, admission
from tasks_app.api.serializers import task_summary
from tasks_app.api.submission import (
    Submission,
    plain_boundary,
    plain_submission,
    submit,
    submit_here,
)
from tasks_app.exceptions import InvalidField, ModuleTooLarge, TaskAlreadyExists, WriteElsewhere
from tasks_app.loop_db import LoopDatabase, loop_database
from tasks_app.models import Task

# The ASGI types of cluster_app.body_limit, the application in front.
Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]
# The application behind: Django's handler, whose scope django-stubs type as
# a dict and whose send as taking any Mapping (narrower than the above; the
# server hands it dicts either way).
Behind = Callable[..., Awaitable[None]]
InThread = Callable[..., Awaitable[Any]]

_JSON = "application/json"
_ACCEPTED = {None, b"*/*", b"application/json"}
# On /metrics: whether submissions take the lane (and that the fuzzer's do).
READ = Counter(
    "ww_submission_lane",
    "POST /tasks read by the submission lane: answered by it, or handed whole to Django",
    ["outcome"],
)
_ANSWERED, _TO_DJANGO = READ.labels("answered"), READ.labels("to_django")


def submission_lane(app: Behind, *, in_thread: InThread, get_response: GetResponse) -> ASGIApp:
    """The lane in front of `app` (Django behind its static files handler),
    or `app` itself where the lane is off. `in_thread` runs a call on one of
    Django's request threads; `get_response` is Django's handler (the
    middleware chain) the lane's admission and headers are probed through."""
    lane_admission = admission(get_response)
    if lane_admission is None:
        return app
    return SubmissionLane(app, in_thread=in_thread, admission=lane_admission)


class SubmissionLane:
    """ASGI middleware in front of Django for plain `POST /tasks`."""

    def __init__(self, app: Behind, *, in_thread: InThread, admission: Admission) -> None:
        self.app = app
        self._in_thread = in_thread
        self._renderer = JSONRenderer()
        self._admission = admission
        # Opened on first use, in the loop's thread (and once the test
        # database, if any, is set up); False: not SQLite.
        self._loop_db: LoopDatabase | bool | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        boundary = _plain_post(scope, self._admission)
        if boundary is None:
            return await self.app(scope, receive, send)
        body = await _read_body(receive)
        if body is None:
            return None  # the client went away
        submission = plain_submission(body, boundary)
        task = None if submission is None else await self._store(submission)
        if task is None:  # not plainly valid, or refused: Django says why
            _TO_DJANGO.inc()
            return await self.app(scope, _replay(body, receive), send)
        _ANSWERED.inc()
        await notify.dispatch_turns()
        payload = self._renderer.render(task_summary(selectors.as_new(task)), _JSON)
        await send(
            {
                "type": "http.response.start",
                "status": 201,
                "headers": [
                    *self._admission.headers,
                    (b"location", f"{PATH}/{task.pk}".encode()),
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


def _plain_post(scope: Scope, admission: Admission) -> bytes | None:
    """The multipart delimiter when `scope` is a request this lane takes."""
    if (
        scope["type"] != "http"
        or scope["method"] != "POST"
        or scope["path"] != PATH
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
        or b"idempotency-key" in headers  # remembered with the task: Django's way
        or headers.get(b"accept") not in _ACCEPTED
    ):
        return None
    content_length = headers.get(b"content-length")
    boundary = plain_boundary(
        headers.get(b"content-type", b"").decode("latin-1"),
        None if content_length is None else content_length.decode("latin-1"),
    )
    if boundary is None or not admission.admits(scope):
        return None
    return boundary


async def _read_body(receive: Receive) -> bytes | None:
    chunks = []
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return None
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(chunks)


def _replay(body: bytes, receive: Receive) -> Receive:
    """A `receive` that gives `body` first, then whatever follows."""
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay
