"""The bench's clients of our gateway: submitting over REST, reading a run's
final state over REST or the websocket streams, and the timestamps in the
answers.

The round-trip clients are lean on purpose: a round trip counts the
client's own time as ours, and Celery's client is redis-py on one kept
connection reading pub/sub on the calling thread. So the HTTP client is one
keep-alive `http.client` connection (httpx costs ~0.5 ms more per request),
and the websocket is the `websockets` library's protocol driven on the
calling thread (its sync client reads on a thread of its own and hands each
message over: two thread wake-ups and GIL hand-offs per message, ~0.2 ms
more measured here)."""

from __future__ import annotations

import http.client
import json
import socket
import time
from collections import Counter
from datetime import UTC, datetime
from typing import Any

from websockets.client import ClientProtocol
from websockets.frames import Frame, Opcode
from websockets.http11 import Response
from websockets.protocol import State
from websockets.uri import parse_uri

# A run in one of these states has its last answer (tasks_app's final states).
FINAL = ("succeeded", "failed", "timed_out", "cancelled")


def ts(value: Any) -> float | None:
    """An ISO timestamp (REST, or SQLite's naive UTC text) as epoch seconds."""
    if value is None or value == "":
        return None
    if isinstance(value, int | float):
        return float(value)
    dt = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return dt.timestamp()


def run_timings(detail: dict[str, Any]) -> list[dict[str, Any]]:
    """Each run of a `GET /tasks/<id>` answer: due, last attempt's send,
    start and finish as epoch seconds; state; attempts made."""
    out = []
    for run in detail["runs"]:
        attempts = run.get("attempts") or []
        last = attempts[-1] if attempts else {}
        out.append(
            {
                "due": ts(run.get("due_at")),
                "sent": ts(last.get("sent_at")),
                "started": ts(run.get("started_at") or last.get("started_at")),
                "finished": ts(run.get("finished_at") or last.get("finished_at")),
                "state": run.get("state"),
                "attempts": len(attempts),
            }
        )
    return out


def submission_form(
    *,
    task_id: str,
    repeats: int = 1,
    start: float = 0,
    delay: float = 0,
    input: int = 1,
    difficulty: int = 2,
    duration: float = 0,
) -> dict[str, str]:
    """The seed's form fields, as the bench submits them."""
    return {
        "id": task_id,
        "description": "bench",
        "complete": "0",
        "duration": str(duration),
        "start": repr(start),
        "delay": repr(delay),
        "repeats": str(repeats),
        "input": str(input),
        "difficulty": str(difficulty),
    }


class LeanClient:
    """One keep-alive HTTP/1.1 connection through the standard library's
    http.client, for the round trips."""

    BOUNDARY = "ww-bench-0123456789abcdef"

    def __init__(self, port: int) -> None:
        self._conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)

    def submit(self, wasm: bytes, **form: Any) -> dict[str, Any]:
        fields = submission_form(**form)
        parts = [
            f'--{self.BOUNDARY}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n'
            f"{value}\r\n".encode()
            for name, value in fields.items()
        ]
        parts.append(
            f'--{self.BOUNDARY}\r\nContent-Disposition: form-data; name="wasm"; '
            'filename="m.wasm"\r\nContent-Type: application/wasm\r\n\r\n'.encode()
            + wasm
            + f"\r\n--{self.BOUNDARY}--\r\n".encode()
        )
        content_type = f"multipart/form-data; boundary={self.BOUNDARY}"
        status, body = self._request("POST", "/tasks", b"".join(parts), content_type)
        if status != 201:
            raise RuntimeError(f"POST /tasks {fields['id']}: {status} {body[:300]!r}")
        return json.loads(body)

    def detail(self, task_id: str) -> dict[str, Any]:
        status, body = self._request("GET", f"/tasks/{task_id}")
        if status != 200:
            raise RuntimeError(f"GET /tasks/{task_id}: {status} {body[:300]!r}")
        return json.loads(body)

    def _request(
        self, method: str, path: str, body: bytes | None = None, content_type: str = ""
    ) -> tuple[int, bytes]:
        headers = {"Content-Type": content_type} if content_type else {}
        self._conn.request(method, path, body=body, headers=headers)
        response = self._conn.getresponse()
        return response.status, response.read()

    def close(self) -> None:
        self._conn.close()


class RunEvents:
    """A websocket stream of run events (`/ws/tasks/` or `/ws/tasks/<id>/`),
    read on the calling thread: the `websockets` protocol (handshake,
    framing, masking, ping answers, close) over a blocking socket."""

    def __init__(self, port: int, path: str, timeout: float = 10) -> None:
        self._proto = ClientProtocol(parse_uri(f"ws://127.0.0.1:{port}{path}"))
        self._sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self._sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._messages: list[str] = []
        self._partial: list[bytes] = []
        self._open = False
        self._closed = False  # the server closed (or the socket ended)
        self._proto.send_request(self._proto.connect())
        self._flush()
        deadline = time.monotonic() + timeout
        while not self._open:
            if self._closed:
                raise ConnectionError("websocket closed during the handshake")
            self._read(deadline - time.monotonic())

    def recv_json(self, timeout: float) -> Any:
        """The next text message, parsed; TimeoutError if none came in time."""
        deadline = time.monotonic() + timeout
        while not self._messages:
            if self._closed:
                raise ConnectionError("websocket closed by the server")
            self._read(deadline - time.monotonic())
        return json.loads(self._messages.pop(0))

    def close(self) -> None:
        try:
            if self._proto.state is State.OPEN:  # not after the server's close
                self._proto.send_close()
                self._flush()
        except OSError:
            pass
        finally:
            self._sock.close()

    def __enter__(self) -> RunEvents:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _read(self, left: float) -> None:
        if left <= 0:
            raise TimeoutError("no websocket message in time")
        self._sock.settimeout(left)
        data = self._sock.recv(65536)  # socket.timeout is TimeoutError
        if data:
            self._proto.receive_data(data)
        else:
            self._proto.receive_eof()
            self._closed = True
        self._flush()  # pongs and close replies the protocol queued
        self._take_events()
        if not self._open and self._proto.handshake_exc is not None:
            raise ConnectionError(f"websocket handshake: {self._proto.handshake_exc}")

    def _take_events(self) -> None:
        for event in self._proto.events_received():
            if isinstance(event, Response):
                self._open = self._proto.handshake_exc is None
                continue
            if not isinstance(event, Frame):
                continue
            if event.opcode in (Opcode.TEXT, Opcode.CONT):
                self._partial.append(event.data)
                if event.fin:
                    self._messages.append(b"".join(self._partial).decode())
                    self._partial = []
            elif event.opcode == Opcode.CLOSE:
                self._closed = True  # messages before it are still read

    def _flush(self) -> None:
        for chunk in self._proto.data_to_send():
            if chunk:
                self._sock.sendall(chunk)


class TaskWatch:
    """Waits for a task's runs on its websocket stream: the client sleeps in
    `recv` (as Celery's `get()` sleeps on Redis pub/sub) instead of polling
    the database, which on a busy 2-core machine takes CPU from the runs
    being timed."""

    def __init__(self, port: int, task_id: str) -> None:
        self._events = RunEvents(port, f"/ws/tasks/{task_id}/")

    def wait_final(self, count: int, timeout: float) -> tuple[float | None, dict[str, int]]:
        """Until `count` runs are final. Returns (wall time the last final
        state arrived, or None on timeout; runs per final state)."""
        deadline = time.monotonic() + timeout
        final: dict[int, str] = {}
        while len(final) < count:
            left = deadline - time.monotonic()
            if left <= 0:
                return None, dict(Counter(final.values()))
            try:
                event = self._events.recv_json(timeout=left)
            except TimeoutError:
                continue
            if event.get("state") in FINAL:
                final[int(event["index"])] = event["state"]
        return time.time(), dict(Counter(final.values()))

    def __enter__(self) -> TaskWatch:
        return self

    def __exit__(self, *exc: object) -> None:
        self._events.close()
