"""`python manage.py submit FILE.wasm ...`: post a task to a gateway's REST
API (the seed's form) and, with --watch, show a progress bar until every
run has ended, then the results.

The gateway is a URL (--url / WW_URL), so this works from any machine that
can reach it; --token / WW_TOKEN is the API token (`manage.py issuetoken`)
that a gateway not bound to loopback asks for before it takes a task. The bar follows the task's own
event stream (/ws/tasks/<id>/) and reads the truth from GET /tasks/<id>;
without the stream it polls once a second."""

from __future__ import annotations

import secrets
import time
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskProgressColumn,
    TextColumn,
    TimeElapsedColumn,
)
from websockets.exceptions import WebSocketException
from websockets.sync.client import ClientConnection, connect

from tasks_app.management.tables import console as table_console
from tasks_app.management.tables import counts_line, more_runs_line, runs_table, short_time

FINAL_STATES = {"succeeded", "failed", "timed_out", "cancelled"}


# -- talking to a gateway (shared with the `tasks` command) --------------------


def add_gateway_options(parser: CommandParser) -> None:
    parser.add_argument(
        "--url",
        default=settings.WW_TASKS.url or f"http://{settings.WW_TASKS.http}",
        help="the gateway's base URL (default %(default)s; env WW_URL)",
    )
    parser.add_argument(
        "--token",
        default=settings.WW_TASKS.token,
        help="API token, sent as 'Authorization: Token TOKEN' (env WW_TOKEN)",
    )


class Gateway:
    """The REST API and the event stream of one gateway."""

    def __init__(self, url: str, token: str, *, timeout: float = 30.0) -> None:
        self.url = url.rstrip("/")
        self.headers = {"Authorization": f"Token {token}"} if token else {}
        self.http = httpx.Client(base_url=self.url, headers=self.headers, timeout=timeout)

    def close(self) -> None:
        self.http.close()

    def request(self, method: str, path: str, **kwargs: Any) -> Any:
        try:
            response = self.http.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            raise CommandError(f"{self.url}: {exc}") from None
        if response.is_error:
            raise CommandError(f"{method} {path}: {response.status_code} {_problem(response)}")
        return response.json()

    def events(self, task_id: str) -> ClientConnection | None:
        """The task's event stream, or None if it cannot be opened."""
        ws_url = "ws" + self.url.removeprefix("http") + f"/ws/tasks/{quote(task_id, safe='')}/"
        try:
            return connect(ws_url, additional_headers=self.headers, open_timeout=5)
        except (OSError, WebSocketException, TimeoutError):
            return None


def _problem(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text[:200]
    return str(body.get("detail", body)) if isinstance(body, dict) else str(body)


# -- the command ----------------------------------------------------------------


class Command(BaseCommand):
    help = "Submit a WebAssembly task to a gateway; --watch follows it to the end."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("wasm", type=Path, help="the module (FILE.wasm)")
        parser.add_argument("--id", help="the task's name (default: FILE-<random>)")
        parser.add_argument("--description", default="")
        parser.add_argument("--input", type=int, default=0)
        parser.add_argument("--difficulty", type=int, default=0)
        parser.add_argument("--start", type=float, default=0, help="seconds before run 0")
        parser.add_argument("--delay", type=float, default=0, help="seconds between runs")
        parser.add_argument("--repeats", type=int, default=1, help="number of runs")
        parser.add_argument(
            "--duration", type=float, default=0, help="time limit of one run, s (0: default)"
        )
        parser.add_argument(
            "--watch", action="store_true", help="show progress until every run has ended"
        )
        parser.add_argument(
            "--timeout", type=float, default=0, help="with --watch: give up after S s (0: never)"
        )
        parser.add_argument(
            "--wide", action="store_true", help="with --watch: full times, peer IDs and errors"
        )
        add_gateway_options(parser)

    def handle(self, *args: Any, **options: Any) -> None:
        path: Path = options["wasm"]
        try:
            wasm = path.read_bytes()
        except OSError as exc:
            raise CommandError(f"cannot read {path}: {exc.strerror}") from None
        task_id = options["id"] or f"{path.stem}-{secrets.token_hex(3)}"
        form = {
            "id": task_id,
            "description": options["description"],
            "complete": "0",
            "duration": str(options["duration"]),
            "start": str(options["start"]),
            "delay": str(options["delay"]),
            "repeats": str(options["repeats"]),
            "input": str(options["input"]),
            "difficulty": str(options["difficulty"]),
        }
        console = Console()
        gateway = Gateway(options["url"], options["token"])
        # Subscribe before submitting, so the first runs' events are not missed.
        stream = gateway.events(task_id) if options["watch"] else None
        try:
            created = gateway.request(
                "POST", "/tasks", data=form, files={"wasm": (path.name, wasm, "application/wasm")}
            )
            console.print(
                f"submitted [bold]{created['id']}[/]: {created['runs']} runs, "
                f"first due {short_time(created.get('next_due_at'))}"
            )
            if not options["watch"]:
                return
            watch(gateway, stream, created, console=console, timeout=options["timeout"])
            # The first page of runs for the table; the counts cover them all.
            task = gateway.request("GET", f"/tasks/{quote(created['id'], safe='')}")
        finally:
            if stream is not None:
                stream.close()
            gateway.close()
        wide = options["wide"]
        table_console(wide=wide).print(runs_table(task, wide=wide))
        if (more := more_runs_line(task)) is not None:
            console.print(more)
        console.print(
            f"{task['id']}: {task['state']}, {task['completions']} of {task['run_count']} "
            "runs succeeded"
        )
        if task["state"] != "succeeded":
            raise SystemExit(1)


def watch(
    gateway: Gateway,
    stream: ClientConnection | None,
    task: dict[str, Any],
    *,
    console: Console,
    timeout: float,
) -> dict[str, Any]:
    """A progress bar of finished runs, until all have ended. `task` is
    the task as submitted; returns it as it ended (counts, no runs)."""
    # Only the counts are wanted while watching: a page of one run.
    task_path = f"/tasks/{quote(task['id'], safe='')}?runs_limit=1"
    deadline = time.monotonic() + timeout if timeout > 0 else None
    columns = (
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TaskProgressColumn(),
        TextColumn("{task.fields[counts]}"),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=console) as progress:
        bar = progress.add_task(task["id"], total=task["runs"], counts="")
        task = gateway.request("GET", task_path)
        while True:
            counts = task["runs_by_state"]
            finished = sum(counts[state] for state in FINAL_STATES)
            progress.update(bar, completed=finished, counts=counts_line(counts))
            if finished >= task["run_count"]:
                return task
            if deadline is not None and time.monotonic() > deadline:
                raise CommandError(f"{task['id']}: not finished after {timeout:g} s")
            stream = _wait_for_event(stream)
            task = gateway.request("GET", task_path)


def _wait_for_event(stream: ClientConnection | None) -> ClientConnection | None:
    """Until the task's next event, or 1 s. Returns the stream, or None
    once it has failed (the caller then polls)."""
    if stream is None:
        time.sleep(1.0)
        return None
    try:
        stream.recv(timeout=1.0)
    except TimeoutError:
        pass
    except (WebSocketException, OSError):
        return None
    return stream
