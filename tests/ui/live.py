"""Helpers for tests against the live cluster: submit over real HTTP, read
a real WebSocket from inside the namespace."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

from websockets.sync.client import ClientConnection, connect

from tests.e2e.cluster import HTTP, PROJECT_ROOT, Cluster, seed_form

HASH_WASM = (PROJECT_ROOT / "hash.wasm").read_bytes()


def submit(cluster: Cluster, task_id: str, **form: str) -> dict[str, Any]:
    response = cluster.request(
        "POST",
        "/tasks",
        data=seed_form(id=task_id, **form),
        files={"wasm": ("hash.wasm", HASH_WASM)},
    )
    assert response.status_code == 201, response.text
    return response.json()


def open_stream(
    cluster: Cluster, path: str, *, origin: str | None = None, server: str = HTTP
) -> ClientConnection:
    """A WebSocket to the gateway (or another server in its namespace),
    opened from inside the namespace."""
    with cluster.netns.entered():
        return connect(f"ws://{server}{path}", origin=origin, open_timeout=10, proxy=None)


def read_events(
    stream: ClientConnection,
    until: Callable[[list[dict[str, Any]]], bool],
    timeout: float,
) -> list[dict[str, Any]]:
    """Events as they come, until `until(events)` holds."""
    events: list[dict[str, Any]] = []
    deadline = time.monotonic() + timeout
    while not until(events):
        left = deadline - time.monotonic()
        if left <= 0:
            raise AssertionError(f"timed out; events so far: {events}")
        try:
            events.append(json.loads(stream.recv(timeout=left)))
        except TimeoutError:
            continue
    return events


def drain(stream: ClientConnection, seconds: float) -> list[dict[str, Any]]:
    """Whatever arrives within `seconds`."""
    events = []
    deadline = time.monotonic() + seconds
    while (left := deadline - time.monotonic()) > 0:
        try:
            events.append(json.loads(stream.recv(timeout=left)))
        except TimeoutError:
            break
    return events


def succeeded(task_id: str, runs: int) -> Callable[[list[dict[str, Any]]], bool]:
    def check(events: list[dict[str, Any]]) -> bool:
        done = {e["index"] for e in events if e["task"] == task_id and e["state"] == "succeeded"}
        return len(done) >= runs

    return check
