"""The CLI's tables (`manage.py tasks`, `submit --watch`), from the REST
API's JSON. They fit 80 columns: times as HH:MM:SS (local time; another
day's as MM-DD HH:MM), peer IDs as their first 8 and last 4 characters,
long text cut with an ellipsis. `wide` shows every value whole."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from rich import box
from rich.console import Console
from rich.table import Table

# A wide table is as wide as its values: the console is given room for a
# peer ID, ISO times and a long error, and the table takes what it needs.
WIDE_WIDTH = 1000
PEER_HEAD, PEER_TAIL = 8, 4


def console(*, wide: bool) -> Console:
    """Where a table is printed: the terminal's width, or room for any
    value with `wide`."""
    return Console(width=WIDE_WIDTH) if wide else Console()


def short_time(value: str | None, *, today: datetime | None = None) -> str:
    """An API timestamp (ISO 8601) in local time: HH:MM:SS when it is
    today, else MM-DD HH:MM; '-' for none."""
    if not value:
        return "-"
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone()
    except ValueError:
        return value
    today = today or datetime.now().astimezone()
    if moment.date() == today.date():
        return moment.strftime("%H:%M:%S")
    return moment.strftime("%m-%d %H:%M")


def short_peer(peer: str | None) -> str:
    """A peer ID as its first 8 and last 4 characters (every libp2p
    Ed25519 ID starts 12D3KooW: the tail tells them apart)."""
    if not peer:
        return "-"
    if len(peer) <= PEER_HEAD + 1 + PEER_TAIL:
        return peer
    return f"{peer[:PEER_HEAD]}…{peer[-PEER_TAIL:]}"


def tasks_table(tasks: list[dict[str, Any]], *, wide: bool = False) -> Table:
    """`GET /tasks`'s tasks, one line each."""
    table = _table(f"{len(tasks)} tasks", wide=wide)
    when = _identity if wide else short_time
    # Narrow, the id and the description share what the others leave.
    table.add_column("id", overflow="fold", ratio=None if wide else 3)
    table.add_column("state", no_wrap=True)
    table.add_column("succeeded", no_wrap=True, justify="right")
    table.add_column("next due", no_wrap=True)
    table.add_column("received", no_wrap=True)
    table.add_column(
        "description",
        overflow="fold" if wide else "ellipsis",
        no_wrap=not wide,
        ratio=None if wide else 2,
    )
    for task in tasks:
        table.add_row(
            task["id"],
            task["state"],
            f"{task['completions']}/{task['runs']}",
            when(task.get("next_due_at")) or "-",
            when(task.get("received_at")) or "-",
            task.get("description") or "",
        )
    return table


def runs_table(task: dict[str, Any], *, wide: bool = False) -> Table:
    """The page of runs in `task` (`GET /tasks/<id>`), one line each."""
    table = _table(f"{task['id']}: runs", wide=wide)
    table.add_column("run", justify="right", no_wrap=True)
    table.add_column("state", no_wrap=True)
    table.add_column("worker", no_wrap=True)
    table.add_column("started", no_wrap=True)
    table.add_column("finished", no_wrap=True)
    table.add_column(
        "result / error",
        overflow="fold" if wide else "ellipsis",
        no_wrap=not wide,
        ratio=None if wide else 1,
    )
    for run in task["runs"]:
        outcome = run["result"] if run["state"] == "succeeded" else (run.get("error") or "-")
        if wide:
            worker, started, finished = (
                run.get("worker") or "-",
                run.get("started_at") or "-",
                run.get("finished_at") or "-",
            )
        else:
            worker = short_peer(run.get("worker"))
            started, finished = (
                short_time(run.get("started_at")),
                short_time(run.get("finished_at")),
            )
        table.add_row(str(run["index"]), run["state"], worker, started, finished, outcome)
    return table


def _table(title: str | None, *, wide: bool) -> Table:
    """A borderless table: narrow, as wide as the console (the columns
    with a ratio take the rest); wide, as wide as its values."""
    return Table(
        title=title,
        box=box.SIMPLE_HEAD,
        show_edge=False,
        pad_edge=False,
        collapse_padding=True,
        expand=not wide,
    )


def counts_line(runs_by_state: dict[str, int]) -> str:
    """'succeeded 3 failed 1': the states that have runs."""
    return " ".join(f"{state} {n}" for state, n in runs_by_state.items() if n)


def more_runs_line(task: dict[str, Any]) -> str | None:
    """What a page of runs leaves out, or None when it shows them all."""
    total, runs = task["run_count"], task["runs"]
    if not runs:
        return f"no runs from run {task.get('runs_offset', 0)} on; the task has {total} runs"
    first, last = runs[0]["index"], runs[-1]["index"]
    if first == 0 and last + 1 >= total:
        return None
    after = total - (last + 1)
    line = f"runs {first}-{last} of {total} shown"
    return f"{line}; {after} more (--all to show every run)" if after > 0 else line


def _identity(value: str | None) -> str:
    return value or "-"
