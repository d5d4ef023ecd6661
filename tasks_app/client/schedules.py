"""A gateway's schedules over REST, for `Client` (blocking):
`Schedules(client).list()`, `.get(name)`, `.create(**fields)`,
`.update(name, **fields)`, `.delete(name)`, `.trigger(name)`. Errors are the
client's (`ClientError` with the status and the JSON body)."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from tasks_app.client import calls
from tasks_app.client.sync import Client


def schedule_path(name: str) -> str:
    return f"/schedules/{quote(name, safe='')}"


class Schedules:
    def __init__(self, client: Client) -> None:
        self._client = client

    def _call(self, call: calls.Call) -> Any:
        return self._client._call(call)  # the client's own transport

    def list(self, *, limit: int | None = None, offset: int | None = None) -> list[dict[str, Any]]:
        """A page of the schedules, by name."""
        params: dict[str, str | int] = {}
        if limit is not None:
            params["limit"] = limit
        if offset is not None:
            params["offset"] = offset
        answer: list[dict[str, Any]] = self._call(
            calls.Call("GET", "/schedules", params=params or None)
        )
        return answer

    def get(self, name: str) -> dict[str, Any]:
        """One schedule, its next 5 fire times and its last firings."""
        answer: dict[str, Any] = self._call(calls.Call("GET", schedule_path(name)))
        return answer

    def create(self, **fields: Any) -> dict[str, Any]:
        answer: dict[str, Any] = self._call(calls.Call("POST", "/schedules", json=fields))
        return answer

    def update(self, name: str, **fields: Any) -> dict[str, Any]:
        answer: dict[str, Any] = self._call(calls.Call("PATCH", schedule_path(name), json=fields))
        return answer

    def delete(self, name: str) -> None:
        call = calls.Call("DELETE", schedule_path(name))
        call.raw_answer(self._client._send(call))  # 204: no body

    def trigger(self, name: str) -> dict[str, Any]:
        """One firing now: its task."""
        answer: dict[str, Any] = self._call(calls.Call("POST", f"{schedule_path(name)}/trigger"))
        return answer
