"""`python manage.py runcluster`: a complete local cluster for trying things
out (what `make run` starts): one gateway and N workers as child processes,
workers finding the gateway by multicast on loopback. Ctrl-C stops all."""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import IO, Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

MANAGE = Path(settings.BASE_DIR) / "manage.py"


class Command(BaseCommand):
    help = "Start a local cluster: one gateway and --workers workers; Ctrl-C stops them."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--workers", type=int, default=2, help="workers to start (default 2)")
        parser.add_argument("--http", default=settings.WW_HTTP, help="gateway HTTP host:port")
        parser.add_argument(
            "--concurrency", type=int, default=1, help="slots per worker (default 1)"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        password = _admin_password()
        children: list[subprocess.Popen[str]] = []
        stopping = threading.Event()

        def stop(signum: int, frame: object) -> None:
            stopping.set()

        signal.signal(signal.SIGINT, stop)
        signal.signal(signal.SIGTERM, stop)
        try:
            gateway = _start([sys.executable, str(MANAGE), "rungateway", "--http", options["http"]])
            children.append(gateway)
            peer_id = _read_line(gateway.stdout, timeout=60)
            if not peer_id.startswith("12D3KooW"):
                raise CommandError(f"the gateway did not start (it said {peer_id!r})")
            _echo(gateway.stdout, prefix="")
            for _ in range(options["workers"]):
                worker = _start(
                    [
                        sys.executable,
                        str(MANAGE),
                        "runworker",
                        "--dial",
                        peer_id,
                        "--concurrency",
                        str(options["concurrency"]),
                    ]
                )
                children.append(worker)
                _echo(worker.stdout, prefix="")
            time.sleep(1.5)
            self.stdout.write(_banner(peer_id, options["http"], options["workers"], password))
            while not stopping.is_set():
                if any(child.poll() is not None for child in children):
                    self.stderr.write("a cluster process exited; stopping the others")
                    break
                stopping.wait(0.5)
        finally:
            _stop_all(children)
        self.stdout.write("cluster stopped")


def _start(argv: list[str]) -> subprocess.Popen[str]:
    # Children ignore Ctrl-C from the terminal; this process stops them in order.
    return subprocess.Popen(
        argv,
        stdout=subprocess.PIPE,
        text=True,
        start_new_session=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )


def _read_line(stream: IO[str] | None, *, timeout: float) -> str:
    assert stream is not None
    result: list[str] = []
    reader = threading.Thread(target=lambda: result.append(stream.readline()), daemon=True)
    reader.start()
    reader.join(timeout)
    return result[0].strip() if result else ""


def _echo(stream: IO[str] | None, *, prefix: str) -> None:
    def pump() -> None:
        assert stream is not None
        for line in stream:
            sys.stdout.write(prefix + line)
            sys.stdout.flush()

    threading.Thread(target=pump, daemon=True).start()


def _stop_all(children: list[subprocess.Popen[str]]) -> None:
    for child in reversed(children):
        if child.poll() is None:
            child.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + 15
    for child in children:
        try:
            child.wait(max(deadline - time.monotonic(), 0.1))
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()


def _admin_password() -> str:
    """An admin login for the local cluster, made once and kept in the state
    directory, so a newcomer can open the admin without reading code."""
    path = Path(settings.STATE_DIR) / "admin-password"
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
ww-scheduler is running: 1 gateway + {workers} workers, SQLite in {settings.STATE_DIR}

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
Ctrl-C stops the cluster.
"""
