"""Our schedules under the bench (issue 18): made over REST (`POST /modules`,
`POST /schedules`), their firings read back from the gateway's SQLite
(read-only), and the gateway SIGKILLed and started again on the same
identity, state and ports.

Timing sources (this machine's wall clock):
- a firing's fire time: exact, from its task id `<name>@<fire time>`;
- its start on a worker: its attempt's `started_at` (the latest, if it was
  tried again), the worker's executor's time.time() when the module's run
  began — the start `bench/shapes/punctuality.py` takes (`runs[].started_at`
  of the REST answer is that attempt's);
- the gateway's restart: the moment its new process is started."""

from __future__ import annotations

import contextlib
import os
import signal
import sqlite3
import sys
import threading
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import httpx

from bench.ours import MANAGE, ROOT, OurSystem


def upload(us: OurSystem, wasm: bytes) -> str:
    r = us.http.post("/modules", content=wasm, headers={"Content-Type": "application/wasm"})
    if r.status_code not in (200, 201):
        raise RuntimeError(f"POST /modules: {r.status_code} {r.text[:300]}")
    return str(r.json()["sha256"])


def iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).isoformat()


def create(us: OurSystem, bodies: Sequence[dict[str, Any]], clients: int = 8) -> dict[str, Any]:
    """POST /schedules of every body, from `clients` threads each on its
    own keep-alive connection; seconds taken and the refusals."""
    errors: list[str] = []
    lock = threading.Lock()
    todo = iter(enumerate(bodies))

    def client() -> None:
        with httpx.Client(base_url=f"http://127.0.0.1:{us.http_port}", timeout=60) as http:
            while True:
                with lock:
                    item = next(todo, None)
                if item is None:
                    return
                r = http.post("/schedules", json=item[1])
                if r.status_code != 201:
                    with lock:
                        errors.append(f"{item[1]['name']}: {r.status_code} {r.text[:200]}")

    started = time.perf_counter()
    threads = [threading.Thread(target=client) for _ in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    seconds = time.perf_counter() - started
    return {
        "schedules": len(bodies),
        "seconds": seconds,
        "per_s": len(bodies) / seconds if seconds else None,
        "clients": clients,
        "errors": len(errors),
        "first_errors": errors[:5],
    }


def _epoch(text: str | None) -> float | None:
    if not text:
        return None
    return datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp()


def fire_time(task_id: str) -> float:
    return datetime.fromisoformat(task_id.split("@", 1)[1]).timestamp()


def firings(us: OurSystem, prefix: str) -> list[dict[str, Any]]:
    """Every firing of the schedules whose names start with `prefix`: its
    schedule, fire time, its (latest) attempt's sending by the gateway and
    start on the worker (None: not yet), the run's state."""
    conn = sqlite3.connect(f"file:{us.state_dir / 'db.sqlite3'}?mode=ro", uri=True, timeout=30)
    try:
        rows = conn.execute(
            "SELECT t.id, i.state, a.sent_at, a.started_at"
            " FROM tasks_app_task t JOIN tasks_app_iteration i ON i.task_id = t.id"
            " LEFT JOIN tasks_app_attempt a ON a.id = (SELECT max(b.id) FROM tasks_app_attempt b"
            "   WHERE b.iteration_id = i.id)"
            " WHERE t.schedule_id IS NOT NULL AND t.id >= ? AND t.id < ?",
            (prefix, prefix + "\uffff"),
        ).fetchall()
    finally:
        conn.close()
    return [
        {
            "schedule": tid.split("@", 1)[0],
            "fire": fire_time(tid),
            "sent": _epoch(sent),
            "started": _epoch(started),
            "state": state,
        }
        for tid, state, sent, started in rows
    ]


def kill_gateway(us: OurSystem) -> float:
    """SIGKILL the gateway; when it was sent."""
    assert us.gateway is not None
    at = time.time()
    with contextlib.suppress(ProcessLookupError):
        os.kill(us.gateway.pid, signal.SIGKILL)
    us.gateway.popen.wait(10)
    us.procs.stop(us.gateway)
    us.gateway = None
    return at


def restart_gateway(us: OurSystem) -> dict[str, float]:
    """A new gateway process on the same state (identity, database) and
    ports, so that the workers, redialing, find it. Returns time.time() at
    its start and when it printed its peer ID and its HTTP address."""
    started = time.time()
    us.gateway = us.procs.start(
        f"{us.label}-gateway",
        [
            sys.executable,
            MANAGE,
            "rungateway",
            "--http",
            f"127.0.0.1:{us.http_port}",
            "--listen",
            f"/ip4/127.0.0.1/tcp/{us.rpc_port}",
            "--no-discovery",
        ],
        env=us.env,
        cwd=ROOT,
    )
    us.gateway.wait_line(lambda s: s.startswith("12D3KooW"), 60)
    peer_line = time.time()
    us.gateway.wait_line(lambda s: s.strip().startswith("http:"), 60)
    http_line = time.time()
    return {"started": started, "peer_id_printed": peer_line, "http_printed": http_line}
