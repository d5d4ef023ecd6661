"""`AsyncClient`: `Client`'s methods, awaitable (httpx's AsyncClient and
websockets' asyncio client); the same requests (tasks_app.client.calls)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping, Sequence
from types import TracebackType
from typing import Any, Self, Unpack

import httpx
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, ConnectionClosedOK, WebSocketException

from tasks_app.client import calls
from tasks_app.client.calls import DEFAULT_TIMEOUT, Module, TaskFields
from tasks_app.client.errors import stream_closed, unreachable


class AsyncClient:
    """`Client`, awaitable: `async with AsyncClient(url) as client:`, then
    `await client.submit(...)`, `async for event in client.events(id)`.
    Raises what `Client` raises."""

    def __init__(
        self, url: str, token: str | None = None, *, timeout: float = DEFAULT_TIMEOUT
    ) -> None:
        self.url = url.rstrip("/")
        self.token = token
        self.timeout = timeout
        self._headers = calls.headers(token)
        self._http = httpx.AsyncClient(base_url=self.url, headers=self._headers, timeout=timeout)
        self._modules: dict[str, str] = {}  # digest of bytes uploaded → their sha256

    async def aclose(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def _send(self, call: calls.Call) -> httpx.Response:
        try:
            return await self._http.request(call.method, call.path, **call.send_args(self.timeout))
        except httpx.HTTPError as exc:
            raise unreachable(self.url, exc) from exc

    async def _call(self, call: calls.Call) -> Any:
        return call.answer(await self._send(call))

    async def upload(self, module: Module) -> str:
        """See Client.upload."""
        wasm = calls.module_bytes(module)
        key = calls.digest(wasm)
        if key not in self._modules:
            self._modules[key] = calls.uploaded(await self._call(calls.upload(wasm)))
        return self._modules[key]

    async def submit(
        self, *, idempotency_key: str | None = None, **task: Unpack[TaskFields]
    ) -> dict[str, Any]:
        """See Client.submit."""
        await self._upload_for([task])
        body = calls.task_body(task, self._modules)
        answer: dict[str, Any] = await self._call(calls.submit(body, idempotency_key))
        return answer

    async def submit_many(
        self, tasks: Sequence[Mapping[str, Any]], *, idempotency_key: str | None = None
    ) -> list[str]:
        """See Client.submit_many."""
        tasks = list(tasks)
        await self._upload_for(tasks)
        bodies = [calls.task_body(task, self._modules) for task in tasks]
        return calls.submitted_ids(await self._call(calls.submit_many(bodies, idempotency_key)))

    async def _upload_for(self, tasks: list[Mapping[str, Any]]) -> None:
        for wasm in calls.modules_to_upload(tasks, self._modules):
            await self.upload(wasm)

    async def get(
        self, task_id: str, *, runs_limit: int | None = None, runs_offset: int | None = None
    ) -> dict[str, Any]:
        """See Client.get."""
        answer: dict[str, Any] = await self._call(
            calls.get(task_id, runs_limit=runs_limit, runs_offset=runs_offset)
        )
        return answer

    async def tasks(
        self, *, limit: int | None = None, offset: int | None = None
    ) -> list[dict[str, Any]]:
        """See Client.tasks."""
        answer: list[dict[str, Any]] = await self._call(calls.tasks(limit=limit, offset=offset))
        return answer

    async def wait(self, task_id: str, timeout: float | None = None) -> dict[str, Any]:
        """See Client.wait."""
        loop = asyncio.get_running_loop()
        deadline = None if timeout is None else loop.time() + timeout
        while True:
            remaining = None if deadline is None else deadline - loop.time()
            step = calls.wait_step(task_id, remaining)
            asked = loop.time()
            task: dict[str, Any] = await self._call(step)
            if calls.is_final(task):
                return task
            now = loop.time()
            if deadline is not None and now >= deadline:
                return task
            if now - asked < step.extra_time - 1:  # not held: see Client.wait
                left = 1.0 if deadline is None else min(1.0, deadline - now)
                await asyncio.sleep(max(left, 0.0))

    async def cancel(self, task_id: str) -> dict[str, Any]:
        """See Client.cancel."""
        answer: dict[str, Any] = await self._call(calls.cancel(task_id))
        return answer

    async def output(self, task_id: str, index: int = 0) -> bytes:
        """See Client.output."""
        call = calls.output(task_id, index)
        return call.raw_answer(await self._send(call))

    def events(self, task_id: str | None = None) -> AsyncEventStream:
        """See Client.events. Connected on `async with` or at the first
        event; `async for event in client.events(id)`."""
        return AsyncEventStream(calls.events_url(self.url, task_id), self._headers, self.timeout)


class AsyncEventStream:
    """`EventStream`, as an async iterator and async context manager."""

    def __init__(self, url: str, headers: dict[str, str], timeout: float) -> None:
        self.url = url
        self._headers = headers
        self._timeout = timeout
        self._ws: ClientConnection | None = None

    async def connect(self) -> Self:
        """Open the stream now (events from this moment on are kept)."""
        await self._connection()
        return self

    async def _connection(self) -> ClientConnection:
        if self._ws is None:
            try:
                self._ws = await connect(
                    self.url, additional_headers=self._headers, open_timeout=self._timeout
                )
            except (OSError, WebSocketException, TimeoutError) as exc:
                raise unreachable(self.url, exc) from exc
        return self._ws

    async def recv(self) -> dict[str, Any] | None:
        """The next event; None at the end of the stream."""
        ws = await self._connection()
        try:
            frame = await ws.recv()
        except ConnectionClosedOK:
            return None
        except ConnectionClosed as exc:
            raise stream_closed(self.url, exc) from exc
        except (OSError, WebSocketException) as exc:
            raise unreachable(self.url, exc) from exc
        event: dict[str, Any] = json.loads(frame)
        return event

    def __aiter__(self) -> Self:
        return self

    async def __anext__(self) -> dict[str, Any]:
        event = await self.recv()
        if event is None:
            raise StopAsyncIteration
        return event

    async def aclose(self) -> None:
        if self._ws is not None:
            await self._ws.close()

    async def __aenter__(self) -> Self:
        return await self.connect()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()
