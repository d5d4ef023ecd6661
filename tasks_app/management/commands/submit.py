"""`python manage.py submit FILE.wasm ...`: post a task to a gateway's REST
API (the seed's form) and, with --watch, show a progress bar until every
run has ended, then the results.

The gateway is a URL (--url / WW_URL), so this works from any machine that
can reach it; --token / WW_TOKEN is the API token (`manage.py issuetoken`)
that a gateway not bound to loopback asks for before it takes a task. It
talks to the gateway through tasks_app.client: the module is uploaded
(POST /modules), then the task submitted as JSON. The bar follows the
task's own event stream (/ws/tasks/<id>/) and reads the truth from
GET /tasks/<id>; without the stream it polls once a second."""

from __future__ import annotations

import secrets
import time
from pathlib import Path
from typing import Any

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

from tasks_app.client import Client, ClientError, EventStream
from tasks_app.management.gateway import add_gateway_options, gateway
from tasks_app.management.tables import console as table_console
from tasks_app.management.tables import counts_line, more_runs_line, runs_table, short_time

FINAL_STATES = {"succeeded", "failed", "timed_out", "cancelled"}


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
        console = Console()
        with gateway(options) as client:
            # Subscribe before submitting, so the first runs' events are not missed.
            stream = _open_events(client, task_id) if options["watch"] else None
            try:
                created = client.submit(
                    id=task_id,
                    wasm=wasm,
                    description=options["description"],
                    duration=options["duration"],
                    start=options["start"],
                    delay=options["delay"],
                    repeats=options["repeats"],
                    input=options["input"],
                    difficulty=options["difficulty"],
                )
                console.print(
                    f"submitted [bold]{created['id']}[/]: {created['runs']} runs, "
                    f"first due {short_time(created.get('next_due_at'))}"
                )
                if not options["watch"]:
                    return
                watch(client, stream, created, console=console, timeout=options["timeout"])
                # The first page of runs for the table; the counts cover them all.
                task = client.get(created["id"])
            finally:
                if stream is not None:
                    stream.close()
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


def _open_events(client: Client, task_id: str) -> EventStream | None:
    """The task's event stream, or None if it cannot be opened (then the
    watch polls)."""
    try:
        return client.events(task_id)
    except ClientError:
        return None


def watch(
    client: Client,
    stream: EventStream | None,
    task: dict[str, Any],
    *,
    console: Console,
    timeout: float,
) -> dict[str, Any]:
    """A progress bar of finished runs, until all have ended. `task` is
    the task as submitted; returns it as it ended (counts, no runs)."""
    task_id = task["id"]
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
        # Only the counts are wanted while watching: a page of one run.
        task = client.get(task_id, runs_limit=1)
        while True:
            counts = task["runs_by_state"]
            finished = sum(counts[state] for state in FINAL_STATES)
            progress.update(bar, completed=finished, counts=counts_line(counts))
            if finished >= task["run_count"]:
                return task
            if deadline is not None and time.monotonic() > deadline:
                raise CommandError(f"{task['id']}: not finished after {timeout:g} s")
            stream = _wait_for_event(stream)
            task = client.get(task_id, runs_limit=1)


def _wait_for_event(stream: EventStream | None) -> EventStream | None:
    """Until the task's next event, or 1 s. Returns the stream, or None
    once it has ended or failed (the caller then polls)."""
    if stream is None:
        time.sleep(1.0)
        return None
    try:
        if stream.recv(timeout=1.0) is None:
            return None
    except TimeoutError:
        pass
    except ClientError:
        return None
    return stream
