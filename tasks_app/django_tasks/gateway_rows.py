"""ClusterBackend's tasks on a gateway, over REST (tasks_app.client): a
refusal is TaskRefused, an unknown id TaskResultDoesNotExist, no answer the
client's ConnectionFailed."""

from __future__ import annotations

from typing import Any

from django_tasks.exceptions import TaskResultDoesNotExist

from tasks_app.client import Client, ClientError, ConnectionFailed
from tasks_app.django_tasks.errors import TaskRefused


class GatewayRows:
    """A gateway's REST API, over one client (kept-alive connections; a
    module's bytes are sent once per content)."""

    def __init__(self, url: str, *, token: str | None, timeout: float) -> None:
        self.client = Client(url, token, timeout=timeout)

    def module(self, wasm: bytes) -> str:
        try:
            return self.client.upload(wasm)
        except ConnectionFailed:
            raise
        except ClientError as exc:
            raise refused(exc) from exc

    def submit(self, body: dict[str, Any]) -> dict[str, Any]:
        try:
            return self.client.submit(**body)
        except ConnectionFailed:
            raise
        except ClientError as exc:
            raise refused(exc) from exc

    def get(self, task_id: str) -> dict[str, Any]:
        try:
            return self.client.get(task_id, runs_limit=1)
        except ConnectionFailed:
            raise
        except ClientError as exc:
            if exc.status == 404:
                raise TaskResultDoesNotExist(task_id) from exc
            raise


def refused(exc: ClientError) -> TaskRefused:
    """The gateway's refusal as TaskRefused."""
    body = exc.body if isinstance(exc.body, dict) else {}
    return TaskRefused(
        str(exc),
        field=exc.field,
        problem=str(body.get("problem", body.get("detail", exc))),
        status=exc.status or 0,
    )
