"""`GET /tasks/<id>?wait=S`: the answer as soon as every run of the task is
final, or after S seconds with the task as it is then; without a thread per
waiting request.

An ASGI piece in front of Django (`TaskWaiting`) holds the waiting
requests as coroutines on the event loop. It asks Django once (the view
checks `wait`, the user's right to read and the task, and says through the
request's scope how many of its runs are still open); if some are, it joins
the task's group on the channel layer (the run events, tasks_app/events.py),
re-reads the task's open runs on its own thread (never a request thread)
when an event says a run ended, and at least every WW_WAIT_RECHECK_SECONDS
anyway (a missed event, or a REST-only process whose layer the gateway does
not share, cannot hang it), then asks Django again for the answer. At most
WW_WAIT_MAX_WAITERS wait at once: one more is answered 503 with
Retry-After by the view (Overloaded), without waiting."""

from __future__ import annotations

import asyncio
import contextlib
import random
import re
from collections.abc import Awaitable, Callable, MutableMapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs

from channels.layers import get_channel_layer
from django.db import close_old_connections
from rest_framework.exceptions import ValidationError
from rest_framework.request import Request

from tasks_app import events, selectors
from tasks_app.exceptions import Overloaded
from tasks_app.models import Iteration

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

MAX_WAIT = 60.0
SCOPE_KEY = "ww.wait"  # the scope's entry the view reports through
_TASK_PATH = re.compile(r"^/tasks/([^/]+)/?$")
_FIRST_RECHECK = 0.25
_FINAL = frozenset(str(state) for state in Iteration.FINAL_STATES)


@dataclass
class Probe:
    """Between the piece and the view, in the request's scope: whether the
    piece refused to wait (too many waiting), and the task's open runs the
    view saw (None: it answered otherwise, an error)."""

    refused: bool = False
    open_runs: int | None = None


def wait_seconds(request: Request) -> float | None:
    """?wait= as seconds (None when absent); a 400 naming `wait` unless
    0 < S <= 60."""
    raw = request.query_params.get("wait")
    if raw is None:
        return None
    seconds = _seconds(raw)
    if seconds is None:
        problem = f"must be a number of seconds, over 0 and at most {MAX_WAIT:g}"
        raise ValidationError({"wait": [problem]})
    return seconds


def _seconds(raw: str) -> float | None:
    try:
        seconds = float(raw)
    except ValueError:
        return None
    return seconds if 0 < seconds <= MAX_WAIT else None


def refuse_if_full(request: Request) -> None:
    """Overloaded (503, Retry-After) when the piece had no room for this waiter."""
    probe = _probe(request)
    if probe is not None and probe.refused:
        raise Overloaded(
            "wait",
            "too many requests are waiting (WW_WAIT_MAX_WAITERS): ask again shortly, or "
            "without wait",
            retry_after=1,
        )


def report(request: Request, runs_by_state: dict[str, int]) -> None:
    """Tell the piece (if one is in front) how many runs are still open."""
    probe = _probe(request)
    if probe is not None:
        probe.open_runs = (
            runs_by_state[Iteration.State.PENDING] + runs_by_state[Iteration.State.RUNNING]
        )


def _probe(request: Request) -> Probe | None:
    scope = getattr(request._request, "scope", None)
    probe = scope.get(SCOPE_KEY) if isinstance(scope, dict) else None
    return probe if isinstance(probe, Probe) else None


class TaskWaiting:
    """ASGI middleware: `GET /tasks/<id>?wait=S` waits here, on the loop."""

    def __init__(self, app: ASGIApp, *, max_waiters: int, recheck: float) -> None:
        self.app = app
        self.max_waiters = max_waiters
        self.recheck = recheck
        self.waiting = 0
        # Re-reads of waiting tasks: their own thread, so a flood of waiters
        # never takes the request threads from other requests.
        self._reads = ThreadPoolExecutor(1, thread_name_prefix="ww-wait")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        found = _waiting_request(scope)
        if found is None or SCOPE_KEY in scope:  # not waiting, or a piece in front has it
            return await self.app(scope, receive, send)
        task_id, seconds = found
        if self.waiting >= self.max_waiters:
            return await self.app({**scope, SCOPE_KEY: Probe(refused=True)}, receive, send)
        self.waiting += 1
        try:
            await self._wait(scope, receive, send, task_id, seconds)
        finally:
            self.waiting -= 1

    async def _wait(
        self, scope: Scope, receive: Receive, send: Send, task_id: str, seconds: float
    ) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + seconds
        body = await _read_body(receive)
        if body is None:
            return  # the client went away
        async with _subscribed(task_id) as ended:
            probe = Probe()
            held: list[Message] = []
            await self.app({**scope, SCOPE_KEY: probe}, _replay(body), _holding(held))
            if probe.open_runs:
                gone: asyncio.Future[Any] = asyncio.ensure_future(_disconnected(receive))
                try:
                    await self._until_settled(task_id, deadline, ended, gone)
                finally:
                    gone.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await gone
                if gone.done() and not gone.cancelled():
                    return  # nobody to answer
                held.clear()
                await self.app({**scope, SCOPE_KEY: Probe()}, _replay(body), _holding(held))
        for message in held:
            await send(message)

    async def _until_settled(
        self, task_id: str, deadline: float, ended: asyncio.Event, gone: asyncio.Future[Any]
    ) -> None:
        loop = asyncio.get_running_loop()
        interval = _FIRST_RECHECK
        while not gone.done():
            left = deadline - loop.time()
            if left <= 0:
                return
            pause = min(left, interval * random.uniform(0.8, 1.2))
            waiter: asyncio.Future[Any] = asyncio.ensure_future(ended.wait())
            try:
                await asyncio.wait([waiter, gone], timeout=pause)
            finally:
                waiter.cancel()
            if gone.done():
                return
            if not ended.is_set():
                interval = min(interval * 2, self.recheck)
            ended.clear()
            open_runs = await loop.run_in_executor(self._reads, _open_runs, task_id)
            if not open_runs:
                return


def _open_runs(task_id: str) -> int | None:
    close_old_connections()  # as a request's start would
    return selectors.open_runs(task_id)


@contextlib.asynccontextmanager
async def _subscribed(task_id: str) -> Any:
    """An Event set whenever the layer says a run of the task ended (or
    that this subscriber fell behind), while inside."""
    ended = asyncio.Event()
    layer = get_channel_layer()
    if layer is None:
        yield ended
        return
    channel = await layer.new_channel("ww.wait.")
    group = events.task_group(task_id)
    await layer.group_add(group, channel)

    async def listen() -> None:
        while True:
            message = await layer.receive(channel)
            changes = message.get("events", ())
            if message.get("type") != "runs.changed" or any(
                change.get("state") in _FINAL for change in changes
            ):
                ended.set()

    listener = asyncio.ensure_future(listen())
    try:
        yield ended
    finally:
        listener.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await listener
        await layer.group_discard(group, channel)


def _waiting_request(scope: Scope) -> tuple[str, float] | None:
    """(task id, seconds) of a valid `GET /tasks/<id>?wait=S`; else None
    (an invalid wait goes to Django, which says what is wrong)."""
    if scope["type"] != "http" or scope["method"] not in ("GET", "HEAD"):
        return None
    match = _TASK_PATH.match(scope["path"])
    if match is None:
        return None
    values = parse_qs(scope.get("query_string", b"").decode("latin-1")).get("wait")
    if not values or len(values) != 1:
        return None
    seconds = _seconds(values[0])
    return None if seconds is None else (match[1], seconds)


async def _read_body(receive: Receive) -> bytes | None:
    chunks = []
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return None
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(chunks)


async def _disconnected(receive: Receive) -> None:
    """Returns when the client has gone away."""
    while (await receive())["type"] != "http.disconnect":
        pass


def _replay(body: bytes) -> Receive:
    """A `receive` giving `body`, then nothing more (the piece watches for
    the client going away itself)."""
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        await asyncio.Event().wait()  # never: Django does not read past the body
        raise AssertionError("unreachable")

    return replay


def _holding(held: list[Message]) -> Send:
    async def hold(message: Message) -> None:
        held.append(message)

    return hold
