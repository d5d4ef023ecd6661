"""Our system under the bench: a real gateway and real workers (separate
processes, static bootstrap on loopback, no multicast), a fresh
WW_STATE_DIR (SQLite) per start, and the measures.

Timing sources (all on this machine's wall clock, time.time()):
- submission: the client's clock just before the POST is sent;
- due time: runs[].due_at (gateway: receipt + start + k*delay);
- start/finish on the worker: runs[].started_at / finished_at (the worker's
  executor, time.time() around the wasm call);
- "result stored": the bench polls the gateway's SQLite database read-only
  every 5 ms and takes the first poll that sees every run in a final state
  (so it is the moment the row was committed, to within 5 ms); round trips
  instead poll the REST API, as a client would.
"""

from __future__ import annotations

import concurrent.futures
import http.client
import json
import os
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from bench import modules
from bench.procs import Proc, Procs, cpu_seconds, free_port, rss_mb

ROOT = Path(__file__).resolve().parents[1]
MANAGE = str(ROOT / "manage.py")
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


def pct(values: list[float], p: float) -> float | None:
    if not values:
        return None
    data = sorted(values)
    k = (len(data) - 1) * p / 100
    lo, hi = int(k), min(int(k) + 1, len(data) - 1)
    return data[lo] + (data[hi] - data[lo]) * (k - lo)


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
    http.client, for the round trips: httpx costs ~0.5 ms more per request
    in the client process, which a round trip would count as ours (Celery's
    client is redis-py on one kept connection)."""

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


class LeanWebSocket:
    """A websocket client reading frames on the calling thread, for the
    round trips: the `websockets` sync client reads on a thread of its own
    and hands each message over (two thread wake-ups and GIL hand-offs,
    ~0.2 ms in the client process that a round trip would count as ours).
    Celery's `get()` reads Redis pub/sub on the calling thread too."""

    def __init__(self, port: int, path: str) -> None:
        import base64
        import socket

        self._sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        self._sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        key = base64.b64encode(os.urandom(16)).decode()
        self._sock.sendall(
            f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
            "Sec-WebSocket-Version: 13\r\n\r\n".encode()
        )
        self._buf = b""
        while b"\r\n\r\n" not in self._buf:
            self._fill()
        head, self._buf = self._buf.split(b"\r\n\r\n", 1)
        if not head.startswith(b"HTTP/1.1 101"):
            raise RuntimeError(f"websocket {path}: {head[:200]!r}")

    def recv_json(self, timeout: float) -> Any:
        """The next text message, parsed; pings are answered on the way."""
        self._sock.settimeout(timeout)
        while True:
            opcode, payload = self._frame()
            if opcode == 1:
                return json.loads(payload)
            if opcode == 9:
                self._send(10, payload)
            elif opcode == 8:
                raise ConnectionError("websocket closed by the server")

    def close(self) -> None:
        try:
            self._send(8, b"\x03\xe8")
        finally:
            self._sock.close()

    def __enter__(self) -> LeanWebSocket:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _frame(self) -> tuple[int, bytes]:
        # Server frames are unmasked; messages here are never fragmented.
        self._need(2)
        opcode, length = self._buf[0] & 0x0F, self._buf[1] & 0x7F
        header = 2
        if length == 126:
            self._need(4)
            length, header = int.from_bytes(self._buf[2:4], "big"), 4
        elif length == 127:
            self._need(10)
            length, header = int.from_bytes(self._buf[2:10], "big"), 10
        self._need(header + length)
        payload = self._buf[header : header + length]
        self._buf = self._buf[header + length :]
        return opcode, payload

    def _need(self, n: int) -> None:
        while len(self._buf) < n:
            self._fill()

    def _fill(self) -> None:
        data = self._sock.recv(65536)
        if not data:
            raise ConnectionError("websocket connection closed")
        self._buf += data

    def _send(self, opcode: int, payload: bytes) -> None:
        mask = os.urandom(4)
        masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        self._sock.sendall(bytes([0x80 | opcode, 0x80 | len(payload)]) + mask + masked)


class TaskWatch:
    """Waits for a task's runs on its websocket stream: the client sleeps in
    `recv` (as Celery's `get()` sleeps on Redis pub/sub) instead of polling
    the database, which on a busy 2-core machine takes CPU from the runs
    being timed."""

    def __init__(self, port: int, task_id: str) -> None:
        from websockets.sync.client import connect

        self._ws = connect(f"ws://127.0.0.1:{port}/ws/tasks/{task_id}/", open_timeout=10)

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
                event = json.loads(self._ws.recv(timeout=left))
            except TimeoutError:
                continue
            if event.get("state") in FINAL:
                final[int(event["index"])] = event["state"]
        return time.time(), dict(Counter(final.values()))

    def __enter__(self) -> TaskWatch:
        return self

    def __exit__(self, *exc: object) -> None:
        self._ws.close()


class OurSystem:
    def __init__(self, procs: Procs, *, label: str, log_level: str = "INFO") -> None:
        self.procs = procs
        self.label = label
        self.state_dir = Path(tempfile.mkdtemp(prefix=f"ww-bench-{label}-"))
        self.env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "wwproject.settings",
            "WW_STATE_DIR": str(self.state_dir),
            "PYTHONUNBUFFERED": "1",
            "WW_LOG_LEVEL": log_level,
        }
        for var in ("DATABASE_URL", "REDIS_URL", "WW_ADDR", "WW_LISTEN"):
            self.env.pop(var, None)
        self.gateway: Proc | None = None
        self.workers: list[tuple[Proc, str]] = []
        self.peer_id = ""
        self.http_port = 0
        self.rpc_port = 0
        self._client: httpx.Client | None = None
        self._db: sqlite3.Connection | None = None
        self._seq = 0
        subprocess.run(
            [sys.executable, MANAGE, "migrate", "--noinput", "-v", "0"],
            env=self.env,
            cwd=ROOT,
            check=True,
        )

    # -- processes -----------------------------------------------------------

    def start_gateway(self) -> None:
        self.http_port, self.rpc_port = free_port(), free_port()
        self.gateway = self.procs.start(
            f"{self.label}-gateway",
            [
                sys.executable,
                MANAGE,
                "rungateway",
                "--http",
                f"127.0.0.1:{self.http_port}",
                "--listen",
                f"/ip4/127.0.0.1/tcp/{self.rpc_port}",
                "--no-discovery",
            ],
            env=self.env,
            cwd=ROOT,
        )
        self.peer_id = self.gateway.wait_line(lambda s: s.startswith("12D3KooW"), 60).strip()
        self.gateway.wait_line(lambda s: s.strip().startswith("http:"), 60)
        self._client = httpx.Client(base_url=f"http://127.0.0.1:{self.http_port}", timeout=60)

    def start_worker(self, concurrency: int = 1) -> Proc:
        proc = self.procs.start(
            f"{self.label}-worker",
            [
                sys.executable,
                MANAGE,
                "runworker",
                "--dial",
                self.peer_id,
                "--addr",
                f"/ip4/127.0.0.1/tcp/{self.rpc_port}",
                "--concurrency",
                str(concurrency),
            ],
            env=self.env,
            cwd=ROOT,
        )
        line = proc.wait_line(lambda s: " joined " in s, 60)
        self.workers.append((proc, line.split()[1]))
        self.wait_pool(len(self.workers))
        return proc

    def wait_pool(self, n: int, timeout: float = 30) -> None:
        """Until the gateway lists n connected workers."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.connected_workers() >= n:
                return
            time.sleep(0.05)
        raise RuntimeError(f"gateway has {self.connected_workers()} workers, wanted {n}")

    def stop(self) -> None:
        if self._client is not None:
            self._client.close()
        if self._db is not None:
            self._db.close()
        for proc, _ in self.workers:
            self.procs.stop(proc)
        if self.gateway is not None:
            self.procs.stop(self.gateway)

    def cpu(self) -> dict[str, float]:
        """CPU seconds so far of the gateway and of all workers together."""
        assert self.gateway is not None
        return {
            "gateway": cpu_seconds(self.gateway.pid),
            "workers": sum(cpu_seconds(p.pid) for p, _ in self.workers if p.alive()),
        }

    def gateway_rss_mb(self) -> float:
        assert self.gateway is not None
        return rss_mb(self.gateway.pid)

    # -- REST ---------------------------------------------------------------

    @property
    def http(self) -> httpx.Client:
        assert self._client is not None
        return self._client

    def new_id(self, prefix: str) -> str:
        self._seq += 1
        return f"{prefix}-{self._seq:06d}"

    def submit(
        self,
        wasm: bytes,
        *,
        task_id: str,
        repeats: int = 1,
        start: float = 0,
        delay: float = 0,
        input: int = 1,
        difficulty: int = 2,
        duration: float = 0,
        client: httpx.Client | None = None,
    ) -> dict[str, Any]:
        form = submission_form(
            task_id=task_id,
            repeats=repeats,
            start=start,
            delay=delay,
            input=input,
            difficulty=difficulty,
            duration=duration,
        )
        r = (client or self.http).post(
            "/tasks", data=form, files={"wasm": ("m.wasm", wasm, "application/wasm")}
        )
        if r.status_code != 201:
            raise RuntimeError(f"POST /tasks {task_id}: {r.status_code} {r.text[:300]}")
        return r.json()

    def lean_client(self) -> LeanClient:
        return LeanClient(self.http_port)

    def detail(self, task_id: str) -> dict[str, Any]:
        r = self.http.get(f"/tasks/{task_id}")
        r.raise_for_status()
        return r.json()

    # -- the database, read-only, for timing ---------------------------------

    @property
    def db(self) -> sqlite3.Connection:
        if self._db is None:
            path = self.state_dir / "db.sqlite3"
            self._db = sqlite3.connect(
                f"file:{path}?mode=ro",
                uri=True,
                timeout=30,
                isolation_level=None,
                check_same_thread=False,
            )
        return self._db

    def connected_workers(self) -> int:
        return int(
            self.db.execute(
                "SELECT count(*) FROM cluster_app_workernode WHERE connected"
            ).fetchone()[0]
        )

    def max_iteration_id(self) -> int:
        return int(
            self.db.execute("SELECT coalesce(max(id), 0) FROM tasks_app_iteration").fetchone()[0]
        )

    def wait_final(
        self, after_id: int, count: int, timeout: float, interval: float = 0.005
    ) -> tuple[float | None, dict[str, int]]:
        """Poll until `count` iterations with id > after_id are final. Returns
        (wall time of the poll that saw it, or None on timeout; states)."""
        deadline = time.monotonic() + timeout
        placeholders = ",".join("?" * len(FINAL))
        q = f"SELECT count(*) FROM tasks_app_iteration WHERE id > ? AND state IN ({placeholders})"
        done_at = None
        while time.monotonic() < deadline:
            n = self.db.execute(q, (after_id, *FINAL)).fetchone()[0]
            if n >= count:
                done_at = time.time()
                break
            time.sleep(interval)
        states = dict(
            self.db.execute(
                "SELECT state, count(*) FROM tasks_app_iteration WHERE id > ? GROUP BY state",
                (after_id,),
            ).fetchall()
        )
        return done_at, states

    def watch(self, task_id: str) -> TaskWatch:
        """The task's run events (`/ws/tasks/<id>/`), connected before it is
        submitted."""
        return TaskWatch(self.http_port, task_id)

    def warm_up(self, wasm: bytes, runs: int = 8, **kw: Any) -> None:
        """Every worker compiles the module once, outside the measures."""
        before = self.max_iteration_id()
        self.submit(wasm, task_id=self.new_id("warm"), repeats=runs, **kw)
        self.wait_final(before, runs, 120)


# -- the measures ---------------------------------------------------------------


def throughput_one_task(sys_: OurSystem, wasm: bytes, n: int) -> dict[str, Any]:
    before = sys_.max_iteration_id()
    cpu0 = sys_.cpu()
    t0 = time.time()
    sys_.submit(wasm, task_id=sys_.new_id("tput1"), repeats=n)
    t_posted = time.time()
    done, states = sys_.wait_final(before, n, timeout=max(120, n / 20))
    if done is None:
        return {"error": f"not done in time: {states}", "states": states}
    return {
        "runs_per_s": n / (done - t0),
        "seconds": done - t0,
        "post_seconds": t_posted - t0,
        "states": states,
        **_cpu_per_run(sys_, cpu0, n),
    }


def _cpu_per_run(sys_: OurSystem, cpu0: dict[str, float], n: int) -> dict[str, float]:
    cpu1 = sys_.cpu()
    return {f"{k}_cpu_ms_per_run": (cpu1[k] - cpu0[k]) * 1000 / n for k in cpu1}


def throughput_separate(
    sys_: OurSystem, wasm: bytes, n: int, concurrency: int = 8
) -> dict[str, Any]:
    before = sys_.max_iteration_id()
    ids = [sys_.new_id("tputn") for _ in range(n)]
    errors: list[str] = []
    clients = [
        httpx.Client(base_url=str(sys_.http.base_url), timeout=60) for _ in range(concurrency)
    ]

    def post(i: int) -> None:
        try:
            sys_.submit(wasm, task_id=ids[i], client=clients[i % concurrency])
        except Exception as exc:  # noqa: BLE001 - counted and reported
            errors.append(str(exc)[:200])

    cpu0 = sys_.cpu()
    t0 = time.time()
    with concurrent.futures.ThreadPoolExecutor(concurrency) as pool:
        list(pool.map(post, range(n)))
    t_posted = time.time()
    for c in clients:
        c.close()
    done, states = sys_.wait_final(before, n - len(errors), timeout=max(120, n / 10))
    if done is None:
        return {
            "error": f"not done in time: {states}",
            "states": states,
            "post_errors": errors[:5],
            "post_error_count": len(errors),
        }
    return {
        "runs_per_s": n / (done - t0),
        "seconds": done - t0,
        "post_seconds": t_posted - t0,
        "posts_per_s": n / (t_posted - t0),
        "states": states,
        "post_error_count": len(errors),
        "post_errors": errors[:5],
        **_cpu_per_run(sys_, cpu0, n),
    }


def _run_timings(detail: dict[str, Any]) -> list[dict[str, float | None]]:
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


def round_trip(sys_: OurSystem, wasm: bytes, n: int, poll: float = 0.001) -> dict[str, Any]:
    """POST one run due now; poll GET /tasks/<id> until it is final."""
    totals, post_ms, parts = (
        [],
        [],
        {"receipt_to_sent": [], "sent_to_started": [], "exec": [], "finished_to_visible": []},
    )
    polls = []
    errors = 0
    client = sys_.lean_client()
    for _ in range(n):
        task_id = sys_.new_id("rt")
        t0 = time.time()
        client.submit(wasm, task_id=task_id)
        t1 = time.time()
        body = None
        k = 0
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            k += 1
            body = client.detail(task_id)
            if body["runs"][0]["state"] in FINAL:
                break
            time.sleep(poll)
        t2 = time.time()
        if body is None or body["runs"][0]["state"] != "succeeded":
            errors += 1
            continue
        totals.append((t2 - t0) * 1000)
        post_ms.append((t1 - t0) * 1000)
        polls.append(k)
        r = _run_timings(body)[0]
        if None not in (r["due"], r["sent"], r["started"], r["finished"]):
            parts["receipt_to_sent"].append((r["sent"] - r["due"]) * 1000)
            parts["sent_to_started"].append((r["started"] - r["sent"]) * 1000)
            parts["exec"].append((r["finished"] - r["started"]) * 1000)
            parts["finished_to_visible"].append((t2 - r["finished"]) * 1000)
    client.close()
    return {
        "p50_ms": pct(totals, 50),
        "p99_ms": pct(totals, 99),
        "n": len(totals),
        "errors": errors,
        "samples_ms": totals,
        "post_p50_ms": pct(post_ms, 50),
        "polls_p50": pct(polls, 50),
        "breakdown_p50_ms": {k: pct(v, 50) for k, v in parts.items()},
        "method": "REST POST /tasks (repeats=1, start=0), then GET /tasks/<id> every 1 ms "
        "until the run is final; one keep-alive http.client connection",
    }


def round_trip_ws(sys_: OurSystem, wasm: bytes, n: int) -> dict[str, Any]:
    """POST one run due now; wait for its final state on the websocket
    stream /ws/tasks/ (connected once, before the first POST)."""
    totals = []
    errors = 0
    client = sys_.lean_client()
    with LeanWebSocket(sys_.http_port, "/ws/tasks/") as ws:
        for _ in range(n):
            task_id = sys_.new_id("rtws")
            t0 = time.time()
            client.submit(wasm, task_id=task_id)
            deadline = time.monotonic() + 30
            ok = False
            while time.monotonic() < deadline:
                msg = ws.recv_json(timeout=max(0.01, deadline - time.monotonic()))
                if msg.get("task") == task_id and msg.get("state") in FINAL:
                    ok = msg.get("state") == "succeeded"
                    break
            if not ok:
                errors += 1
                continue
            totals.append((time.time() - t0) * 1000)
    client.close()
    return {
        "p50_ms": pct(totals, 50),
        "p99_ms": pct(totals, 99),
        "n": len(totals),
        "errors": errors,
        "samples_ms": totals,
        "method": "REST POST /tasks (one keep-alive http.client connection), then the run's "
        "final state on ws://.../ws/tasks/ (frames read on the client's thread)",
    }


def lateness_stats(lates_ms: list[float]) -> dict[str, Any]:
    return {
        "p50_ms": pct(lates_ms, 50),
        "p99_ms": pct(lates_ms, 99),
        "max_ms": max(lates_ms) if lates_ms else None,
        "early": sum(1 for x in lates_ms if x < 0),
        "min_ms": min(lates_ms) if lates_ms else None,
        "n": len(lates_ms),
    }


def punctuality(sys_: OurSystem, wasm: bytes, n: int, spacing: float) -> dict[str, Any]:
    before = sys_.max_iteration_id()
    task_id = sys_.new_id("punct")
    sys_.submit(wasm, task_id=task_id, repeats=n, start=1.0, delay=spacing)
    _, states = sys_.wait_final(before, n, timeout=60)
    body = sys_.detail(task_id)
    runs = _run_timings(body)
    lates = [(r["started"] - r["due"]) * 1000 for r in runs if r["started"] and r["due"]]
    out = lateness_stats(lates)
    out["states"] = states
    return out


def hash_puzzle(sys_: OurSystem, wasm: bytes, difficulty: int) -> dict[str, Any]:
    task_id = sys_.new_id("hash")
    with sys_.watch(task_id) as watch:
        t0 = time.time()
        sys_.submit(wasm, task_id=task_id, input=0, difficulty=difficulty)
        done, _ = watch.wait_final(1, timeout=120)
    body = sys_.detail(task_id)
    r = _run_timings(body)[0]
    return {
        "seconds": (done - t0) if done else None,
        "exec_seconds": (r["finished"] - r["started"]) if r["finished"] else None,
        "result": body["runs"][0]["result"],
        "state": body["runs"][0]["state"],
    }


def cpu_batch(sys_: OurSystem, wasm: bytes, n: int, iters: int) -> dict[str, Any]:
    task_id = sys_.new_id("cpu")
    with sys_.watch(task_id) as watch:
        t0 = time.time()
        sys_.submit(wasm, task_id=task_id, repeats=n, input=1, difficulty=iters)
        done, states = watch.wait_final(n, timeout=120)
    runs = _run_timings(sys_.detail(task_id))
    execs = [r["finished"] - r["started"] for r in runs if r["finished"] and r["started"]]
    return {
        "seconds": (done - t0) if done else None,
        "states": states,
        "mean_exec_s": statistics.mean(execs) if execs else None,
    }


def worker_loss(sys_: OurSystem, wasm: bytes, iters: int, n: int = 20) -> dict[str, Any]:
    """SIGKILL the first worker 0.25 s into one of its runs."""
    victim, victim_peer = sys_.workers[0]
    before = sys_.max_iteration_id()
    task_id = sys_.new_id("loss")
    sys_.submit(wasm, task_id=task_id, repeats=n, input=1, difficulty=iters)
    kill_at = None
    killed_attempt = None
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        row = sys_.db.execute(
            "SELECT a.id, a.sent_at FROM tasks_app_attempt a JOIN tasks_app_iteration i "
            "ON a.iteration_id = i.id WHERE i.id > ? AND a.outcome = 'running' "
            "AND a.worker_peer_id = ? ORDER BY a.id DESC LIMIT 1",
            (before, victim_peer),
        ).fetchone()
        if row and time.time() - ts(row[1]) >= 0.25:
            os.kill(victim.pid, 9)
            kill_at = time.time()
            killed_attempt = row[0]
            break
        time.sleep(0.005)
    if kill_at is None:
        return {"error": "the victim never ran anything"}
    done, states = sys_.wait_final(before, n, timeout=120)
    body = sys_.detail(task_id)
    killed_iteration = sys_.db.execute(
        "SELECT iteration_id FROM tasks_app_attempt WHERE id = ?", (killed_attempt,)
    ).fetchone()[0]
    lost_row = sys_.db.execute(
        "SELECT finished_at, outcome FROM tasks_app_attempt WHERE id = ?", (killed_attempt,)
    ).fetchone()
    retry = sys_.db.execute(
        "SELECT sent_at, started_at, outcome FROM tasks_app_attempt WHERE iteration_id = ? "
        "AND id > ? ORDER BY id LIMIT 1",
        (killed_iteration, killed_attempt),
    ).fetchone()
    runs = body["runs"]
    return {
        "runs": n,
        "lost": sum(1 for r in runs if r["state"] not in FINAL),
        "failed": sum(1 for r in runs if r["state"] != "succeeded" and r["state"] in FINAL),
        "rerun": sum(1 for r in runs if len(r.get("attempts") or []) > 1),
        "killed_attempt_outcome": lost_row[1],
        "detect_s": (ts(lost_row[0]) - kill_at) if lost_row[0] else None,
        "redispatch_s": (ts(retry[0]) - kill_at) if retry else None,
        "rerun_start_s": (ts(retry[1]) - kill_at) if retry and retry[1] else None,
        "all_done_s": (done - kill_at) if done else None,
        "states": states,
    }


def seed_tasks(sys_: OurSystem, n: int) -> float:
    """Store n finished one-run tasks straight through the ORM (before the
    gateway starts): what n POSTs and n runs would have left behind."""
    t0 = time.time()
    subprocess.run(
        [sys.executable, str(Path(__file__).with_name("seed_db.py")), str(n)],
        env=sys_.env,
        cwd=ROOT,
        check=True,
    )
    return time.time() - t0


def list_latency(sys_: OurSystem, n: int) -> dict[str, Any]:
    times = []
    total = None
    for _ in range(n):
        t0 = time.perf_counter()
        r = sys_.http.get("/tasks")
        times.append((time.perf_counter() - t0) * 1000)
        r.raise_for_status()
        total = r.headers.get("X-Total-Count")
    return {"p50_ms": pct(times, 50), "p99_ms": pct(times, 99), "n": n, "total": total}


def fairness(
    sys_: OurSystem, wasm: bytes, connections: int, runs: int, procs: Procs
) -> dict[str, Any]:
    """`connections` worker connections from one process (bench/many_workers.py),
    then `runs` no-op runs; max/min runs per worker."""
    proc = procs.start(
        f"{sys_.label}-many",
        [
            sys.executable,
            str(Path(__file__).with_name("many_workers.py")),
            "--addr",
            f"/ip4/127.0.0.1/tcp/{sys_.rpc_port}",
            "--dial",
            sys_.peer_id,
            "--n",
            str(connections),
        ],
        env=sys_.env,
        cwd=ROOT,
    )
    try:
        proc.wait_line(lambda s: s.startswith("ready"), 120)
        sys_.wait_pool(connections, timeout=60)
        before = sys_.max_iteration_id()
        t0 = time.time()
        sys_.submit(wasm, task_id=sys_.new_id("fair"), repeats=runs)
        done, states = sys_.wait_final(before, runs, timeout=300)
        counts = dict(
            sys_.db.execute(
                "SELECT a.worker_peer_id, count(*) FROM tasks_app_attempt a JOIN "
                "tasks_app_iteration i ON a.iteration_id = i.id WHERE i.id > ? "
                "GROUP BY a.worker_peer_id",
                (before,),
            ).fetchall()
        )
        peers = [
            r[0]
            for r in sys_.db.execute(
                "SELECT peer_id FROM cluster_app_workernode WHERE connected"
            ).fetchall()
        ]
        per = [counts.get(p, 0) for p in peers]
        rss = sys_.gateway_rss_mb()
        return {
            "connections": connections,
            "workers_in_pool": len(peers),
            "runs": runs,
            "max": max(per) if per else None,
            "min": min(per) if per else None,
            "ratio": (max(per) / min(per)) if per and min(per) > 0 else float("inf"),
            "stdev": statistics.pstdev(per) if per else None,
            "runs_per_s": runs / (done - t0) if done else None,
            "states": states,
            "gateway_rss_mb_after": rss,
        }
    finally:
        procs.stop(proc)


__all__ = ["OurSystem", "modules"]
