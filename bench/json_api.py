"""The second contract's endpoints as the bench uses them (SPEC, "Modules,
JSON tasks, batches, waiting"): `POST /modules` (raw bytes), `POST /tasks`
as JSON naming the module by its hash, `POST /tasks/batch` and `GET
/tasks/<id>?wait=S`, over one keep-alive `http.client` connection as the
round trips' client is.

They are being built beside the bench: a gateway that does not serve one
yet answers in a way `unavailable_reason` recognises (no route, a method
not allowed, a JSON body read as the seed's form), and `wait_honoured`
tells a `?wait` that returned early; the shapes then report "not
available" instead of a figure."""

from __future__ import annotations

import json
import time
from typing import Any

from bench.clients import FINAL, LeanClient

# Statuses a gateway gives for an endpoint (or a request shape) it does not have.
NO_ENDPOINT = (404, 405, 415, 501)


class Unavailable(Exception):
    """An endpoint of the second contract this gateway does not serve (yet)."""


def unavailable_reason(what: str, status: int, body: bytes) -> str | None:
    """Why an answer means `what` is not served, or None when it is an
    answer of the endpoint itself (success, or an error of its own). A JSON
    task refused because the seed's form has no `wasm` file in it is the
    form's answer, not the JSON endpoint's."""
    if status in NO_ENDPOINT:
        return f"{what}: answered {status} (not served by this gateway)"
    if status == 400 and what.startswith("POST /tasks") and _error_field(body) == "wasm":
        return f"{what}: answered 400 on field 'wasm' (the JSON task is read as the seed's form)"
    return None


def _error_field(body: bytes) -> str | None:
    try:
        doc = json.loads(body)
    except ValueError:
        return None
    field = doc.get("field") if isinstance(doc, dict) else None
    return field if isinstance(field, str) else None


def all_final(detail: dict[str, Any]) -> bool:
    runs = detail.get("runs") or []
    return bool(runs) and all(run.get("state") in FINAL for run in runs)


def wait_honoured(detail: dict[str, Any], elapsed_s: float, wait_s: float) -> bool:
    """A `?wait=S` answer is the contract's when every run is final or the
    wait has (nearly) run out; one that came back early with a run still
    open means the gateway ignored the parameter."""
    return all_final(detail) or elapsed_s >= 0.9 * wait_s


def compact(doc: Any) -> bytes:
    """JSON without the spaces json.dumps puts after separators: 10,000
    one-run tasks are ~1.03 MB so, ~1.09 MB with them (the gateway reads at
    most DATA_UPLOAD_MAX_MEMORY_SIZE, 1 MiB)."""
    return json.dumps(doc, separators=(",", ":")).encode()


def task_body(sha256: str, *, input: int = 1, difficulty: int = 2) -> dict[str, Any]:
    """One one-run task naming a stored module (the gateway makes its id)."""
    return {"module": sha256, "input": input, "difficulty": difficulty}


class JsonClient(LeanClient):
    def upload(self, wasm: bytes) -> str:
        """The module's sha256 (201 stored now, 200 already stored)."""
        status, body = self._request("POST", "/modules", wasm, "application/wasm")
        self._check("POST /modules", status, body, (200, 201))
        return str(json.loads(body)["sha256"])

    def submit_json(self, task: dict[str, Any]) -> dict[str, Any]:
        status, body = self._request("POST", "/tasks", compact(task), JSON)
        self._check("POST /tasks (JSON, module by hash)", status, body, (201,))
        out: dict[str, Any] = json.loads(body)
        return out

    def submit_batch(self, tasks: list[dict[str, Any]]) -> list[str]:
        status, body = self._request("POST", "/tasks/batch", compact({"tasks": tasks}), JSON)
        self._check("POST /tasks/batch", status, body, (201,))
        return [str(i) for i in json.loads(body)["ids"]]

    def wait(self, task_id: str, seconds: float) -> dict[str, Any]:
        """`GET /tasks/<id>?wait=S`; Unavailable if it came back early with
        a run not final."""
        t0 = time.monotonic()
        status, body = self._request("GET", f"/tasks/{task_id}?wait={seconds:g}")
        self._check("GET /tasks/<id>?wait", status, body, (200,))
        out: dict[str, Any] = json.loads(body)
        elapsed = time.monotonic() - t0
        if not wait_honoured(out, elapsed, seconds):
            raise Unavailable(
                f"GET /tasks/<id>?wait={seconds:g}: answered in {elapsed * 1000:.1f} ms with a "
                "run not final (the parameter is not honoured)"
            )
        return out

    @staticmethod
    def _check(what: str, status: int, body: bytes, ok: tuple[int, ...]) -> None:
        if status in ok:
            return
        reason = unavailable_reason(what, status, body)
        if reason is not None:
            raise Unavailable(reason)
        raise RuntimeError(f"{what}: {status} {body[:300]!r}")


JSON = "application/json"


def not_available(exc: Unavailable) -> dict[str, Any]:
    """Our side of a shape whose endpoint is not there yet."""
    return {"available": False, "error": f"not available: {exc}"}
