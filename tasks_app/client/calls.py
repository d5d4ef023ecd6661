"""What each client method asks the gateway and how it reads the answer,
without any I/O: `Client` and `AsyncClient` both send these requests, so
the two stay the same API by construction."""

from __future__ import annotations

import base64
import hashlib
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypedDict
from urllib.parse import quote

import httpx

from tasks_app.client.errors import ClientError, refusal

FINAL_STATES = ("succeeded", "failed", "timed_out", "cancelled")
# The longest `?wait=S` the gateway takes (SPEC: S ≤ 60); longer waits ask again.
MAX_WAIT = 60.0
MIN_WAIT = 0.01  # less time left than this: a plain read (the gateway takes S > 0)
DEFAULT_TIMEOUT = 30.0

Module = str | os.PathLike[str] | bytes


class TaskFields(TypedDict, total=False):
    """A task as `POST /tasks` (JSON) takes it. `wasm` is the client's own:
    a module's path or bytes, uploaded (once per client and content) and
    sent as `module`; bytes given as `stdin` are sent as `stdin_base64`."""

    id: str
    description: str
    module: str
    wasm: Module
    wasm_base64: str
    input: int
    difficulty: int
    start: float
    delay: float
    repeats: int
    duration: float
    retries: int
    args: list[str]
    stdin: str | bytes
    stdin_base64: str
    env: dict[str, str]
    priority: int
    queue: str
    constraints: dict[str, str]
    replicas: int
    fuel: int


@dataclass(frozen=True)
class Call:
    """One request: what httpx sends."""

    method: str
    path: str
    params: dict[str, str | int] | None = None
    json: Any = None
    content: bytes | None = None
    headers: dict[str, str] = field(default_factory=dict)
    # Seconds beyond the client's own timeout (a long poll holds the answer).
    extra_time: float = 0.0

    def send_args(self, timeout: float) -> dict[str, Any]:
        """httpx's `request` keywords for this call."""
        args: dict[str, Any] = {"params": self.params, "headers": self.headers}
        if self.json is not None:
            args["json"] = self.json
        if self.content is not None:
            args["content"] = self.content
        if self.extra_time:
            args["timeout"] = timeout + self.extra_time
        return args

    def answer(self, response: httpx.Response) -> Any:
        """The response's JSON, or the ClientError it is."""
        if response.is_error:
            raise refusal(self.method, self.path, response)
        return response.json()

    def raw_answer(self, response: httpx.Response) -> bytes:
        if response.is_error:
            raise refusal(self.method, self.path, response)
        return response.content


def task_path(task_id: str) -> str:
    return f"/tasks/{quote(task_id, safe='')}"


def headers(token: str | None) -> dict[str, str]:
    """What every request (and the event stream's handshake) carries."""
    return {"Authorization": f"Token {token}"} if token else {}


def events_url(base_url: str, task_id: str | None) -> str:
    """The websocket of every task's run events, or of one task's."""
    ws = "ws" + base_url.removeprefix("http")  # http → ws, https → wss
    return f"{ws}/ws/tasks/" + (f"{quote(task_id, safe='')}/" if task_id else "")


# -- modules --------------------------------------------------------------------


def module_bytes(module: Module) -> bytes:
    """A module given as bytes, or the bytes of the file at a path."""
    if isinstance(module, bytes):
        return module
    try:
        return Path(module).read_bytes()
    except OSError as exc:
        raise ClientError(f"cannot read {module}: {exc.strerror}", status=None) from None


def digest(wasm: bytes) -> str:
    """A module's sha256 as the gateway names it."""
    return hashlib.sha256(wasm).hexdigest()


def upload(wasm: bytes) -> Call:
    return Call("POST", "/modules", content=wasm, headers={"Content-Type": "application/wasm"})


def uploaded(answer: Any) -> str:
    return str(answer["sha256"])


# -- tasks ----------------------------------------------------------------------


def task_body(task: Mapping[str, Any], modules: Mapping[str, str]) -> dict[str, Any]:
    """The JSON task object: `task` with `wasm` replaced by its module's
    sha256 (`modules`: digest of the bytes → sha256 as uploaded) and bytes
    of stdin as `stdin_base64`. Any other key goes as it is (the gateway
    names a field it does not know)."""
    body = dict(task)
    if "wasm" in body:
        body["module"] = modules[digest(module_bytes(body.pop("wasm")))]
    if isinstance(body.get("stdin"), bytes):
        body["stdin_base64"] = base64.b64encode(body.pop("stdin")).decode()
    return body


def modules_to_upload(tasks: list[Mapping[str, Any]], known: Mapping[str, str]) -> list[bytes]:
    """The distinct modules given as `wasm` that this client has not
    uploaded yet."""
    new: dict[str, bytes] = {}
    for task in tasks:
        if "wasm" in task:
            wasm = module_bytes(task["wasm"])
            key = digest(wasm)
            if key not in known:
                new.setdefault(key, wasm)
    return list(new.values())


def submit(body: dict[str, Any], idempotency_key: str | None) -> Call:
    return Call("POST", "/tasks", json=body, headers=_idempotency(idempotency_key))


def submit_many(bodies: list[dict[str, Any]], idempotency_key: str | None) -> Call:
    return Call(
        "POST", "/tasks/batch", json={"tasks": bodies}, headers=_idempotency(idempotency_key)
    )


def submitted_ids(answer: Any) -> list[str]:
    return [str(task_id) for task_id in answer["ids"]]


def _idempotency(key: str | None) -> dict[str, str]:
    return {"Idempotency-Key": key} if key else {}


def get(task_id: str, *, runs_limit: int | None, runs_offset: int | None) -> Call:
    params: dict[str, str | int] = {}
    if runs_limit is not None:
        params["runs_limit"] = runs_limit
    if runs_offset is not None:
        params["runs_offset"] = runs_offset
    return Call("GET", task_path(task_id), params=params or None)


def tasks(*, limit: int | None, offset: int | None) -> Call:
    params: dict[str, str | int] = {}
    if limit is not None:
        params["limit"] = limit
    if offset is not None:
        params["offset"] = offset
    return Call("GET", "/tasks", params=params or None)


def cancel(task_id: str) -> Call:
    return Call("DELETE", task_path(task_id))


def output(task_id: str, index: int) -> Call:
    return Call("GET", f"{task_path(task_id)}/runs/{index}/output")


# -- waiting --------------------------------------------------------------------


def is_final(task: Mapping[str, Any]) -> bool:
    """Whether every run of the task (as `GET /tasks/<id>` answers it) has
    ended."""
    counts = task.get("runs_by_state")
    if not isinstance(counts, Mapping):
        return False
    total = task.get("run_count", task.get("runs"))
    return sum(int(counts.get(state, 0)) for state in FINAL_STATES) >= int(total or 0)


def wait_step(task_id: str, remaining: float | None) -> Call:
    """One long poll: `?wait=S` for up to MAX_WAIT of the time left (None:
    no limit); with no time left, a plain read. The answer may take S
    seconds, so the read timeout grows by as much."""
    seconds = MAX_WAIT if remaining is None else min(MAX_WAIT, remaining)
    if seconds < MIN_WAIT:
        return Call("GET", task_path(task_id))
    seconds = round(seconds, 3)
    return Call("GET", task_path(task_id), params={"wait": f"{seconds:g}"}, extra_time=seconds)
