"""`python manage.py tasks [ID]`: a gateway's tasks with their progress, or
one task's runs with their results (over the REST API, like `submit`).

A task's runs come a page at a time from `GET /tasks/<id>`: the first page
is shown with how many more there are; `--all` pages through every run.
Tables fit 80 columns; `--wide` shows full times, peer IDs and errors."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from tasks_app.client import Client
from tasks_app.management.gateway import add_gateway_options, gateway
from tasks_app.management.tables import (
    console,
    counts_line,
    more_runs_line,
    runs_table,
    tasks_table,
)

# Runs per request with --all: the API's largest page.
ALL_PAGE = 1000


class Command(BaseCommand):
    help = "List a gateway's tasks, or show one task's runs."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("id", nargs="?", help="show this task's runs")
        parser.add_argument("--limit", type=int, default=100, help="tasks per page (max 1000)")
        parser.add_argument("--offset", type=int, default=0)
        parser.add_argument(
            "--runs-offset", type=int, default=0, help="with ID: the first run shown (default 0)"
        )
        parser.add_argument(
            "--all", action="store_true", help="with ID: every run, not only the first page"
        )
        parser.add_argument(
            "--wide", action="store_true", help="full times, peer IDs and errors (wider than 80)"
        )
        add_gateway_options(parser)

    def handle(self, *args: Any, **options: Any) -> None:
        out = console(wide=options["wide"])
        with gateway(options) as client:
            if options["id"]:
                show_runs(
                    client,
                    options["id"],
                    out=out,
                    wide=options["wide"],
                    every=options["all"],
                    offset=options["runs_offset"],
                )
                return
            tasks = client.tasks(limit=options["limit"], offset=options["offset"])
        out.print(tasks_table(tasks, wide=options["wide"]))


def show_runs(
    client: Client, task_id: str, *, out: Any, wide: bool, every: bool, offset: int
) -> None:
    """Print the task's runs from `offset`: one page, or with `every` each
    page in turn until the last."""
    limit = ALL_PAGE if every else None
    task = client.get(task_id, runs_limit=limit, runs_offset=offset)
    out.print(runs_table(task, wide=wide))
    while every and task["runs"] and task["runs"][-1]["index"] + 1 < task["run_count"]:
        task = client.get(task_id, runs_limit=limit, runs_offset=task["runs"][-1]["index"] + 1)
        out.print(runs_table(task, wide=wide))
    if not every and (more := more_runs_line(task)) is not None:
        out.print(more)
    out.print(f"{task['id']}: {task['state']}, {counts_line(task['runs_by_state'])}")
