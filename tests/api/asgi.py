"""HTTP requests through an ASGI app in-process, as daphne passes them."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
from asgiref.testing import ApplicationCommunicator


def asgi_request(
    app: Any, method: str, path: str, **httpx_kwargs: Any
) -> tuple[int, dict[str, str], bytes]:
    """One HTTP request through an ASGI app, as daphne would pass it."""
    request = httpx.Request(method, f"http://127.0.0.1:8080{path}", **httpx_kwargs)
    body = request.read()
    path, _, query = path.partition("?")
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": query.encode(),
        "root_path": "",
        "headers": [(k.lower().encode(), v.encode()) for k, v in request.headers.items()],
        "client": ("127.0.0.1", 40000),
        "server": ("127.0.0.1", 8080),
    }

    async def exchange() -> tuple[int, dict[str, str], bytes]:
        app_instance = ApplicationCommunicator(app, scope)
        await app_instance.send_input({"type": "http.request", "body": body})
        start = await app_instance.receive_output(10)
        content = b""
        while True:
            message = await app_instance.receive_output(10)
            content += message.get("body", b"")
            if not message.get("more_body"):
                break
        await app_instance.wait(10)
        headers = {k.decode().lower(): v.decode() for k, v in start["headers"]}
        return start["status"], headers, content

    return asyncio.run(exchange())
