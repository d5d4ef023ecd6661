"""`python manage.py tasks [ID]`: a gateway's tasks with their progress, or
one task's runs with their results (over the REST API, like `submit`)."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from django.core.management.base import BaseCommand, CommandParser
from rich.console import Console
from rich.table import Table

from tasks_app.management.commands.submit import Gateway, add_gateway_options, results_table


class Command(BaseCommand):
    help = "List a gateway's tasks, or show one task's runs."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("id", nargs="?", help="show this task's runs")
        parser.add_argument("--limit", type=int, default=100, help="tasks per page (max 1000)")
        parser.add_argument("--offset", type=int, default=0)
        add_gateway_options(parser)

    def handle(self, *args: Any, **options: Any) -> None:
        console = Console()
        gateway = Gateway(options["url"], options["token"])
        try:
            if options["id"]:
                task = gateway.request("GET", f"/tasks/{quote(options['id'], safe='')}")
                console.print(results_table(task))
                return
            tasks = gateway.request(
                "GET", "/tasks", params={"limit": options["limit"], "offset": options["offset"]}
            )
        finally:
            gateway.close()
        console.print(tasks_table(tasks))


def tasks_table(tasks: list[dict[str, Any]]) -> Table:
    table = Table(title=f"{len(tasks)} tasks")
    for column in ("id", "state", "succeeded", "next due", "received", "description"):
        table.add_column(column, overflow="fold")
    for task in tasks:
        table.add_row(
            task["id"],
            task["state"],
            f"{task['completions']}/{task['runs']}",
            task.get("next_due_at") or "-",
            task["received_at"],
            task["description"],
        )
    return table
