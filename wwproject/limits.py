"""An ASGI middleware that refuses request bodies over a size limit with a
413, before the body is read (by Content-Length) or as soon as a streamed
body passes the limit."""

from __future__ import annotations

import io
import json
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
App = Callable[[Scope, Receive, Send], Awaitable[None]]


class BodyTooLarge(Exception):
    pass


class BodySizeLimit:
    def __init__(self, app: App, *, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = _content_length(scope)
        if declared is not None and declared > self.limit:
            await self._refuse(send)
            return
        seen = 0
        started = False

        async def limited_receive() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.limit:
                    raise BodyTooLarge
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except BodyTooLarge:
            if not started:
                await self._refuse(send)

    async def _refuse(self, send: Send) -> None:
        body = _too_large_body(self.limit)
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                    (b"connection", b"close"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})


def _too_large_body(limit: int) -> bytes:
    problem = f"request body is larger than the limit of {limit} bytes"
    return json.dumps({"field": "wasm", "problem": problem, "detail": f"wasm: {problem}"}).encode()


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", []):
        if name.lower() == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


def bounded_daphne_requests(max_body: int) -> None:
    """Make daphne (in this process) discard request bodies over `max_body`
    as they arrive and answer 413 itself, and never parse multipart forms
    into Twisted's `request.args` (about ten times the body in memory, and
    daphne does not use it). Without this, daphne holds a whole upload in
    memory before the ASGI guard above sees it."""
    import daphne.http_protocol

    base = daphne.http_protocol.WebRequest
    if getattr(base, "ww_bounded", False):
        base.max_body = max_body
        return

    class BoundedWebRequest(base):  # type: ignore[misc, valid-type]
        ww_bounded = True

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            kwargs.setdefault("parsePOSTFormSubmission", False)
            super().__init__(*args, **kwargs)
            self._body_seen = 0
            self._too_large = False

        def gotLength(self, length: int | None) -> None:  # Twisted's name
            if length is not None and length > self.max_body:
                self._drop_body()
                return
            super().gotLength(length)

        def handleContentChunk(self, data: bytes) -> None:  # Twisted's name
            if self._too_large:
                return
            self._body_seen += len(data)
            if self._body_seen > self.max_body:
                self._drop_body()
                return
            super().handleContentChunk(data)

        def _drop_body(self) -> None:
            if self.content is not None and not self.content.closed:
                self.content.close()
            self.content = io.BytesIO()
            self._too_large = True

        def process(self) -> None:
            if not self._too_large:
                super().process()
                return
            body = _too_large_body(self.max_body)
            self.setResponseCode(413)
            for name, value in (
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"connection", b"close"),
            ):
                self.responseHeaders.setRawHeaders(name, [value])
            self.write(body)
            self.finish()

    BoundedWebRequest.max_body = max_body
    # daphne's HTTPFactory looks the class up by name for each connection.
    daphne.http_protocol.WebRequest = BoundedWebRequest
