"""Our system under the bench: a real gateway and real workers (separate
processes, static bootstrap on loopback, no multicast), a fresh
WW_STATE_DIR (SQLite) per start, its REST API through httpx and its
database read-only (bench/gateway_db.py).

Timing sources (all on this machine's wall clock, time.time()):
- submission: the client's clock just before the POST is sent;
- due time: runs[].due_at (gateway: receipt + start + k*delay);
- start/finish on the worker: runs[].started_at / finished_at (the worker's
  executor, time.time() around the wasm call);
- "result stored": the first 5 ms poll of the database that sees every run
  final; round trips instead ask the REST API or the websocket, as a client
  would.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from bench.clients import LeanClient, TaskWatch, submission_form
from bench.gateway_db import GatewayDB
from bench.procs import Proc, Procs, cpu_seconds, free_port, rss_mb

ROOT = Path(__file__).resolve().parents[1]
MANAGE = str(ROOT / "manage.py")


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
        self.db = GatewayDB(self.state_dir / "db.sqlite3")
        self._client: httpx.Client | None = None
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
            if self.db.connected_workers() >= n:
                return
            time.sleep(0.05)
        raise RuntimeError(f"gateway has {self.db.connected_workers()} workers, wanted {n}")

    def stop(self) -> None:
        if self._client is not None:
            self._client.close()
        self.db.close()
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

    def watch(self, task_id: str) -> TaskWatch:
        """The task's run events (`/ws/tasks/<id>/`), connected before it is
        submitted."""
        return TaskWatch(self.http_port, task_id)

    def warm_up(self, wasm: bytes, runs: int = 8, **kw: Any) -> None:
        """Every worker compiles the module once, outside the measures."""
        before = self.db.max_iteration_id()
        self.submit(wasm, task_id=self.new_id("warm"), repeats=runs, **kw)
        self.db.wait_final(before, runs, 120)
