"""`python manage.py schedules [NAME]`: a gateway's schedules with their next
fire time, or one schedule's next fire times and last firings (over the REST
API, like `tasks`)."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandParser
from rich.table import Table

from tasks_app.client.schedules import Schedules
from tasks_app.management.gateway import add_gateway_options, gateway
from tasks_app.management.tables import console


class Command(BaseCommand):
    help = "List a gateway's schedules, or show one schedule's fire times and firings."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("name", nargs="?", help="show this schedule")
        parser.add_argument("--limit", type=int, default=100, help="schedules per page")
        parser.add_argument("--offset", type=int, default=0)
        add_gateway_options(parser)

    def handle(self, *args: Any, **options: Any) -> None:
        out = console(wide=False)
        with gateway(options) as client:
            schedules = Schedules(client)
            if options["name"]:
                out.print(schedule_table(schedules.get(options["name"])))
                return
            listed = schedules.list(limit=options["limit"], offset=options["offset"])
        out.print(schedules_table(listed))


def _when(schedule: dict[str, Any]) -> str:
    if schedule.get("cron"):
        zone = schedule.get("timezone") or "UTC"
        return f"{schedule['cron']} ({zone})"
    return f"every {schedule['every']:g} s"


def schedules_table(schedules: list[dict[str, Any]]) -> Table:
    table = Table("name", "when", "overlap", "state", "next fire", "fired", "skipped")
    for s in schedules:
        table.add_row(
            s["name"],
            _when(s),
            s["overlap"],
            "paused" if s["paused"] else "active",
            s["next_fire_at"] or "-",
            str(s["fired_count"]),
            str(s["skipped_count"]),
        )
    if not schedules:
        table.caption = "no schedules"
    return table


def schedule_table(schedule: dict[str, Any]) -> Table:
    state = "paused" if schedule["paused"] else "active"
    table = Table(
        "firing", "state", "error", title=f"{schedule['name']}: {_when(schedule)}, {state}"
    )
    for firing in schedule.get("last_firings", []):
        table.add_row(firing["task"], firing["state"], firing["error"])
    upcoming = schedule.get("next_fire_times") or []
    table.caption = "next: " + (", ".join(upcoming) if upcoming else "none")
    return table
