"""`python manage.py runcluster`: a complete local cluster for trying things
out (what `make run` starts): one gateway and N workers as child processes,
workers finding the gateway by multicast on loopback.

Ctrl-C, SIGTERM and SIGHUP (the terminal closing) stop all of them. The
children run in sessions of their own, so the terminal's signals reach only
this process, which stops them in order; each child is started with
`--parent-pid` and ends by itself if this process is killed outright
(`cluster_app.lifetime`). "ww-scheduler is running" is printed only once the
gateway serves and every worker has joined; a start that fails (state
directory or port in use, a child exiting) exits non-zero."""

from __future__ import annotations

import contextlib
import os
import queue
import secrets
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from cluster_app import state_lock
from cluster_app.management.commands.rungateway import state_lock_path
from cluster_app.port_check import PortInUse, ensure_free

MANAGE = Path(settings.BASE_DIR) / "manage.py"
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
GATEWAY_START_SECONDS = 120.0
WORKER_JOIN_SECONDS = 60.0


class Stopped(Exception):
    """A stop signal arrived while the cluster was starting."""


class Command(BaseCommand):
    help = (
        "Start a local cluster: one gateway and --workers workers; "
        "Ctrl-C, SIGTERM or SIGHUP stops them."
    )

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--workers", type=int, default=2, help="workers to start (default 2)")
        parser.add_argument(
            "--http", default=settings.WW_TASKS.http, help="gateway HTTP host:port (env WW_HTTP)"
        )
        parser.add_argument(
            "--concurrency", type=int, default=1, help="slots per worker (default 1)"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        stopping = threading.Event()

        def stop(signum: int, frame: object) -> None:
            stopping.set()

        for sig in STOP_SIGNALS:
            signal.signal(sig, stop)
        _check_free(options["http"])
        password = _admin_password()
        children: list[Child] = []
        failed = False
        try:
            gateway = Child.start("gateway", ["rungateway", "--http", options["http"]])
            children.append(gateway)
            peer_id = gateway.wait_line(
                lambda s: s.startswith("12D3KooW"), GATEWAY_START_SECONDS, stopping
            ).strip()
            gateway.wait_line(
                lambda s: s.strip().startswith("http:"), GATEWAY_START_SECONDS, stopping
            )
            workers = [
                Child.start(
                    "worker",
                    ["runworker", "--dial", peer_id, "--concurrency", str(options["concurrency"])],
                )
                for _ in range(options["workers"])
            ]
            children.extend(workers)
            for worker in workers:
                worker.wait_line(lambda s: " joined " in s, WORKER_JOIN_SECONDS, stopping)
            _say(_banner(peer_id, options["http"], options["workers"], password))
            while not stopping.is_set():
                if any(child.popen.poll() is not None for child in children):
                    _say("a cluster process exited; stopping the others", err=True)
                    failed = True
                    break
                stopping.wait(0.5)
        except Stopped:
            pass
        finally:
            _stop_all(children)
        _say("cluster stopped")
        if failed:
            raise SystemExit(1)


def _check_free(http: str) -> None:
    """Fail before starting anything if a gateway cannot start here."""
    host, _, port = http.rpartition(":")
    if not host or not port.isdigit():
        raise CommandError(f"--http must be host:port, not {http!r}")
    try:
        state_lock.check_free(
            state_lock_path(), what=f"state directory {settings.WW_CLUSTER.state_dir}"
        )
        ensure_free(host, int(port), what="HTTP address")
    except (state_lock.LockHeld, PortInUse) as exc:
        raise CommandError(f"{exc}; is another `make run` going?") from None


class Child:
    """A node process; its stdout is echoed to ours and its lines kept for
    waiting on."""

    def __init__(self, name: str, popen: subprocess.Popen[str]) -> None:
        self.name = name
        self.popen = popen
        self._lines: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=self._pump, name=f"echo-{name}", daemon=True).start()

    @classmethod
    def start(cls, name: str, command: list[str]) -> Child:
        # Started from the main thread, which lives as long as this process:
        # the children's PR_SET_PDEATHSIG fires when the *thread* that forked
        # them exits. Their own sessions keep the terminal's Ctrl-C and
        # SIGHUP away from them; this process stops them in order instead.
        assert threading.current_thread() is threading.main_thread()
        popen = subprocess.Popen(
            [sys.executable, str(MANAGE), *command, "--parent-pid", str(os.getpid())],
            stdout=subprocess.PIPE,
            text=True,
            start_new_session=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        return cls(name, popen)

    def _pump(self) -> None:
        assert self.popen.stdout is not None
        # Keep reading even when our stdout is gone (a closed terminal): a
        # child blocked on a full pipe could not stop.
        for line in self.popen.stdout:
            self._lines.put(line)
            if not line.startswith("12D3KooW"):  # the gateway's bare peer ID line
                _say(line, end="")
        self._lines.put(None)

    def wait_line(
        self, predicate: Callable[[str], bool], timeout: float, stop: threading.Event
    ) -> str:
        """The first line matching `predicate`; CommandError if the child
        exits or `timeout` passes first, Stopped on a stop signal."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if stop.is_set():
                raise Stopped
            try:
                line = self._lines.get(timeout=0.2)
            except queue.Empty:
                continue
            if line is None:
                code = self.popen.wait()
                raise CommandError(
                    f"the {self.name} exited (code {code}) before it was up; its messages are above"
                )
            if predicate(line):
                return line
        raise CommandError(f"the {self.name} was not up after {timeout:.0f} s")


def _say(text: str, *, end: str = "\n", err: bool = False) -> None:
    # After SIGHUP the terminal may be gone; the stop must go on regardless.
    stream = sys.stderr if err else sys.stdout
    with contextlib.suppress(OSError, ValueError):
        stream.write(text + end)
        stream.flush()


def _stop_all(children: list[Child]) -> None:
    for child in reversed(children):
        if child.popen.poll() is None:
            child.popen.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + 15
    for child in children:
        try:
            child.popen.wait(max(deadline - time.monotonic(), 0.1))
        except subprocess.TimeoutExpired:
            child.popen.kill()
            child.popen.wait()


def _admin_password() -> str:
    """An admin login for the local cluster, made once and kept in the state
    directory, so a newcomer can open the admin without reading code."""
    path = settings.WW_CLUSTER.state_dir / "admin-password"
    user_model = get_user_model()
    if path.exists() and user_model.objects.filter(username="admin").exists():
        return path.read_text().strip()
    password = secrets.token_urlsafe(12)
    user, _ = user_model.objects.get_or_create(
        username="admin", defaults={"is_staff": True, "is_superuser": True}
    )
    user.is_staff = user.is_superuser = True
    user.set_password(password)
    user.save()
    path.write_text(password + "\n")
    path.chmod(0o600)
    return password


def _banner(peer_id: str, http: str, workers: int, password: str) -> str:
    host, _, port = http.rpartition(":")
    url_host = "localhost" if host in {"127.0.0.1", "localhost"} else host
    base = f"http://{url_host}:{port}"
    return f"""
ww-scheduler is running: 1 gateway + {workers} workers, SQLite in {settings.WW_CLUSTER.state_dir}

  gateway peer ID  {peer_id}
  REST API         {base}/tasks
  admin            {base}/admin/   (user: admin, password: {password})

Try the seed's job (from this directory; hash.wasm is the example module):

curl -X POST -H "Content-Type: multipart/form-data" \\
     -F "id=task1" \\
     -F "description=Hash puzzle" \\
     -F "complete=0" \\
     -F "duration=5" \\
     -F "start=1" \\
     -F "delay=2" \\
     -F "repeats=3" \\
     -F "wasm=@hash.wasm" \\
     -F "input=0" \\
     -F "difficulty=3" \\
     {base}/tasks

curl {base}/tasks            # progress: completions reaches 3
curl {base}/tasks/task1      # each run: state, worker, timings, result 2832

Watch discovery packets:  .venv/bin/python manage.py casm_ls
Ctrl-C stops the cluster (so does closing this terminal).
"""
