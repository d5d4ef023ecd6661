"""`Client`: a gateway's REST API and run events, blocking."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator, Mapping, Sequence
from types import TracebackType
from typing import Any, Self, Unpack

import httpx
from websockets.exceptions import ConnectionClosed, ConnectionClosedOK, WebSocketException
from websockets.sync.client import ClientConnection, connect

from tasks_app.client import calls
from tasks_app.client.calls import DEFAULT_TIMEOUT, Module, TaskFields
from tasks_app.client.errors import stream_closed, unreachable


class Client:
    """One gateway, over one pool of kept-alive connections. Use it as a
    context manager (`with Client(url) as client:`) or call `close()`.

    Every method raises `ClientError` (its `status` and JSON `body`) when
    the gateway refuses, `ConnectionFailed` (a ClientError, `status` None)
    when it does not answer."""

    def __init__(
        self, url: str, token: str | None = None, *, timeout: float = DEFAULT_TIMEOUT
    ) -> None:
        self.url = url.rstrip("/")
        self.token = token
        self.timeout = timeout
        self._headers = calls.headers(token)
        self._http = httpx.Client(base_url=self.url, headers=self._headers, timeout=timeout)
        self._modules: dict[str, str] = {}  # digest of bytes uploaded → their sha256

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def _send(self, call: calls.Call) -> httpx.Response:
        try:
            return self._http.request(call.method, call.path, **call.send_args(self.timeout))
        except httpx.HTTPError as exc:
            raise unreachable(self.url, exc) from exc

    def _call(self, call: calls.Call) -> Any:
        return call.answer(self._send(call))

    # -- modules ------------------------------------------------------------

    def upload(self, module: Module) -> str:
        """Store a module (its path or bytes) on the gateway; its sha256.
        The same bytes again are not sent again by this client."""
        wasm = calls.module_bytes(module)
        key = calls.digest(wasm)
        if key not in self._modules:
            self._modules[key] = calls.uploaded(self._call(calls.upload(wasm)))
        return self._modules[key]

    # -- tasks --------------------------------------------------------------

    def submit(
        self, *, idempotency_key: str | None = None, **task: Unpack[TaskFields]
    ) -> dict[str, Any]:
        """Submit one task (`POST /tasks`, JSON); the task as stored. Give
        the module as `module` (a sha256), `wasm_base64`, or `wasm` (a
        path or bytes: uploaded first)."""
        self._upload_for([task])
        body = calls.task_body(task, self._modules)
        answer: dict[str, Any] = self._call(calls.submit(body, idempotency_key))
        return answer

    def submit_many(
        self, tasks: Sequence[Mapping[str, Any]], *, idempotency_key: str | None = None
    ) -> list[str]:
        """Submit tasks all together or none (`POST /tasks/batch`, up to
        10,000); their ids, in order. A refusal's `body` names the `index`
        and the `field`."""
        tasks = list(tasks)
        self._upload_for(tasks)
        bodies = [calls.task_body(task, self._modules) for task in tasks]
        return calls.submitted_ids(self._call(calls.submit_many(bodies, idempotency_key)))

    def _upload_for(self, tasks: list[Mapping[str, Any]]) -> None:
        for wasm in calls.modules_to_upload(tasks, self._modules):
            self.upload(wasm)

    def get(
        self, task_id: str, *, runs_limit: int | None = None, runs_offset: int | None = None
    ) -> dict[str, Any]:
        """The task, its runs counted by state and a page of its runs."""
        answer: dict[str, Any] = self._call(
            calls.get(task_id, runs_limit=runs_limit, runs_offset=runs_offset)
        )
        return answer

    def tasks(self, *, limit: int | None = None, offset: int | None = None) -> list[dict[str, Any]]:
        """A page of the gateway's tasks, oldest first."""
        answer: list[dict[str, Any]] = self._call(calls.tasks(limit=limit, offset=offset))
        return answer

    def wait(self, task_id: str, timeout: float | None = None) -> dict[str, Any]:
        """The task once every run of it has ended, or as it is when
        `timeout` seconds have passed (None: no limit). Long polls
        (`?wait=S`, S ≤ 60, asked again for longer waits); never polls
        faster than once a second."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            remaining = None if deadline is None else deadline - time.monotonic()
            step = calls.wait_step(task_id, remaining)
            asked = time.monotonic()
            task: dict[str, Any] = self._call(step)
            if calls.is_final(task):
                return task
            now = time.monotonic()
            if deadline is not None and now >= deadline:
                return task
            # An early answer that is not final: a gateway that does not
            # hold the request. Do not ask again at once.
            if now - asked < step.extra_time - 1:
                left = 1.0 if deadline is None else min(1.0, deadline - now)
                time.sleep(max(left, 0.0))

    def cancel(self, task_id: str) -> dict[str, Any]:
        """Cancel the task (no run not started yet will run); its summary."""
        answer: dict[str, Any] = self._call(calls.cancel(task_id))
        return answer

    def output(self, task_id: str, index: int = 0) -> bytes:
        """Run `index`'s output, its raw bytes."""
        call = calls.output(task_id, index)
        return call.raw_answer(self._send(call))

    # -- events -------------------------------------------------------------

    def events(self, task_id: str | None = None) -> EventStream:
        """The run events of every task, or of one (`run.changed` objects),
        from now on. Connected when this returns; iterate it, and close it
        (or use it as a context manager)."""
        url = calls.events_url(self.url, task_id)
        try:
            ws = connect(
                url, additional_headers=self._headers, open_timeout=self.timeout, legacy=True
            )
        except (OSError, WebSocketException, TimeoutError) as exc:
            raise unreachable(url, exc) from exc
        return EventStream(ws, url)


class EventStream:
    """Run events as they come: an iterator of dicts that ends when the
    gateway closes the stream normally. A stream closed otherwise (4008:
    this reader fell behind) raises ConnectionFailed with the close `code`
    and `reason` in its body: read `GET /tasks/<id>` to catch up."""

    def __init__(self, ws: ClientConnection, url: str) -> None:
        self._ws = ws
        self.url = url

    def recv(self, timeout: float | None = None) -> dict[str, Any] | None:
        """The next event; None at the end of the stream. TimeoutError if
        none comes within `timeout` seconds."""
        try:
            frame = self._ws.recv(timeout=timeout)
        except ConnectionClosedOK:
            return None
        except ConnectionClosed as exc:
            raise stream_closed(self.url, exc) from exc
        except (OSError, WebSocketException) as exc:
            raise unreachable(self.url, exc) from exc
        event: dict[str, Any] = json.loads(frame)
        return event

    def __iter__(self) -> Iterator[dict[str, Any]]:
        while (event := self.recv()) is not None:
            yield event

    def close(self) -> None:
        self._ws.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
