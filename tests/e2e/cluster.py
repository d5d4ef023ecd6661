"""Real gateway and worker processes inside a private network namespace,
for end-to-end tests. Nothing is mocked: daphne serves HTTP, workers find
the gateway by multicast and talk Cap'n Proto over TCP, wasmtime runs the
modules. Every process is stopped by PID when the test ends."""

from __future__ import annotations

import atexit
import contextlib
import functools
import os
import queue
import secrets
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx

from tests.netns import NetNS, new_netns

PROJECT_ROOT = Path(__file__).resolve().parents[2]
MANAGE = str(PROJECT_ROOT / "manage.py")
HTTP = "127.0.0.1:8080"  # each namespace has its own loopback, so no clash


def migrate(env: dict[str, str]) -> None:
    subprocess.run(
        [sys.executable, MANAGE, "migrate", "--noinput", "-v", "0"],
        env=env,
        check=True,
        cwd=PROJECT_ROOT,
    )


@functools.cache
def migrated_template() -> Path:
    """An embedded-default database with every migration applied, made once
    per test process (removed with the process's temporary directory)."""
    state = Path(tempfile.mkdtemp(prefix="ww-migrated-"))
    atexit.register(shutil.rmtree, state, ignore_errors=True)
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "wwproject.settings", "WW_STATE_DIR": str(state)}
    env.pop("DATABASE_URL", None)
    migrate(env)
    return state / "db.sqlite3"


def copy_database(source: Path, target: Path) -> None:
    """A consistent copy of a SQLite database (its WAL included)."""
    with contextlib.closing(sqlite3.connect(source)) as src:
        with contextlib.closing(sqlite3.connect(target)) as dst:
            src.backup(dst)


class Proc:
    """A child process whose stdout lines are collected as they come."""

    def __init__(self, popen: subprocess.Popen[str]) -> None:
        self.popen = popen
        self.lines: list[str] = []
        self._new: queue.Queue[str] = queue.Queue()
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self) -> None:
        assert self.popen.stdout is not None
        for line in self.popen.stdout:
            self.lines.append(line.rstrip("\n"))
            self._new.put(line)

    @property
    def pid(self) -> int:
        return self.popen.pid

    def output(self) -> str:
        return "\n".join(self.lines) + "\n"

    def wait_for_line(self, predicate: Callable[[str], bool], timeout: float) -> str:
        deadline = time.monotonic() + timeout
        seen = 0
        while time.monotonic() < deadline:
            for line in self.lines[seen:]:
                if predicate(line):
                    return line
            seen = len(self.lines)
            if self.popen.poll() is not None and self._new.empty():
                break
            try:
                self._new.get(timeout=0.1)
            except queue.Empty:
                pass
        raise AssertionError(
            f"no matching line within {timeout} s (exit {self.popen.poll()}); "
            f"output so far:\n{self.output()}"
        )


class Cluster:
    def __init__(self, netns: NetNS, state_dir: Path, **env: str) -> None:
        self.netns = netns
        self.state_dir = state_dir
        self.env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "wwproject.settings",
            "WW_STATE_DIR": str(state_dir),
            "PYTHONUNBUFFERED": "1",
            "WW_LOG_LEVEL": "INFO",
            # What each worker ran, for tests/faults/harness.py to check.
            "WW_EXECUTION_LOG": str(state_dir / "executions.jsonl"),
            **env,
        }
        self.env.pop("DATABASE_URL", None)
        self.env.update(env)
        self.gateway: Proc | None = None
        self.peer_id = ""
        self.workers: list[tuple[Proc, str]] = []
        if "DATABASE_URL" in self.env:
            migrate(self.env)
        else:
            # The embedded default: a copy of one database migrated once per
            # test process (a `manage.py migrate` costs ~1.3 s of CPU, and the
            # suite starts over a hundred clusters).
            state_dir.mkdir(parents=True, exist_ok=True)
            copy_database(migrated_template(), state_dir / "db.sqlite3")
            # Its own development key, made before any process races to (as
            # the migrate made it).
            key = state_dir / "secret-key"
            key.write_text(secrets.token_urlsafe(50))
            key.chmod(0o600)

    def manage(self, *args: str, stderr: Any = None, netns: NetNS | None = None) -> Proc:
        """Run a manage.py command in the cluster's namespace (or `netns`)."""
        log = open(self.state_dir / f"{args[0]}-{time.monotonic_ns()}.log", "w")
        popen = (netns or self.netns).spawn(
            [sys.executable, MANAGE, *args],
            env=self.env,
            cwd=PROJECT_ROOT,
            stdout=subprocess.PIPE,
            stderr=stderr if stderr is not None else log,
            text=True,
        )
        return Proc(popen)

    def start_gateway(self, *args: str) -> str:
        self.gateway = self.manage("rungateway", "--http", HTTP, *args)
        self.peer_id = self.gateway.wait_for_line(lambda s: s.startswith("12D3KooW"), 60)
        self.gateway.wait_for_line(lambda s: s.strip().startswith("http:"), 60)
        return self.peer_id

    def start_worker(self, *args: str, dial: str | None = None, netns: NetNS | None = None) -> str:
        proc = self.manage("runworker", "--dial", dial or self.peer_id, *args, netns=netns)
        line = proc.wait_for_line(lambda s: s.startswith("worker "), 60)
        peer_id = line.split()[1]
        self.workers.append((proc, peer_id))
        return peer_id

    def wait_joined(self, peer_id: str, timeout: float = 30) -> None:
        for proc, worker_id in self.workers:
            if worker_id == peer_id:
                proc.wait_for_line(lambda s: " joined " in s, timeout)
                return
        raise KeyError(peer_id)

    def http(self) -> httpx.Client:
        return httpx.Client(base_url=f"http://{HTTP}", timeout=30)

    def request(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        """One HTTP request from inside the namespace."""
        with self.netns.entered(), self.http() as client:
            return client.request(method, url, **kwargs)

    def wait_for(self, check: Callable[[], Any], timeout: float, what: str) -> Any:
        deadline = time.monotonic() + timeout
        last: Any = None
        while time.monotonic() < deadline:
            last = check()
            if last:
                return last
            time.sleep(0.2)
        raise AssertionError(f"timed out waiting for {what}; last: {last!r}")

    def gateway_log(self) -> str:
        logs = sorted(self.state_dir.glob("rungateway-*.log"))
        return logs[-1].read_text() if logs else ""


def seed_form(**overrides: str) -> dict[str, str]:
    """The seed's curl fields."""
    form = {
        "id": "task1",
        "description": "Hash puzzle",
        "complete": "0",
        "duration": "5",
        "start": "1",
        "delay": "2",
        "repeats": "3",
        "input": "0",
        "difficulty": "3",
    }
    form.update(overrides)
    return form


@contextlib.contextmanager
def running_cluster(
    state_dir: Path,
    *,
    workers: int = 0,
    concurrency: int = 1,
    gateway_args: tuple[str, ...] = (),
    **env: str,
) -> Iterator[Cluster]:
    """A gateway (and `workers` joined workers) in a fresh private network
    namespace; every process is stopped and the namespace deleted on exit.
    Skips the test where namespaces cannot be made (fails it under CI=true)."""
    ns = new_netns()
    try:
        cluster = Cluster(ns, state_dir, **env)
        cluster.start_gateway(*gateway_args)
        for _ in range(workers):
            cluster.wait_joined(cluster.start_worker("--concurrency", str(concurrency)))
        yield cluster
    finally:
        ns.close()
