"""A Python client of a gateway's REST API and run events, for programs
on any machine that can reach it (it needs httpx and websockets, not
Django):

    from tasks_app.client import Client

    with Client("http://127.0.0.1:8080", token=None) as client:
        task = client.submit(wasm="hash.wasm", input=0, difficulty=3)
        done = client.wait(task["id"], timeout=60)
        print(done["state"], [run["result"] for run in done["runs"]])

`AsyncClient` has the same methods, awaitable. Every failure is a
`ClientError` (`status`, JSON `body`); `ConnectionFailed`, a subclass with
`status` None, is a gateway that did not answer."""

from tasks_app.client.aio import AsyncClient, AsyncEventStream
from tasks_app.client.calls import TaskFields
from tasks_app.client.errors import ClientError, ConnectionFailed
from tasks_app.client.sync import Client, EventStream

__all__ = [
    "AsyncClient",
    "AsyncEventStream",
    "Client",
    "ClientError",
    "ConnectionFailed",
    "EventStream",
    "TaskFields",
]
