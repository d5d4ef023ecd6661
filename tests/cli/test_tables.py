"""The CLI's tables fit 80 columns, one line per run or task, with short
times and peer IDs; `--wide` shows the full values. Rendered from the JSON
the REST API gives, here a page deep inside a 100,000-run task."""

from __future__ import annotations

import io
from datetime import datetime, timedelta
from typing import Any

from rich.console import Console

from tasks_app.management.tables import (
    WIDE_WIDTH,
    more_runs_line,
    runs_table,
    short_peer,
    short_time,
    tasks_table,
)

PEER = "12D3KooWQdc1sHWeBqbWuCPZEG5gjLy4tWrc8ppKYTRAMq4upeTP"
NOW = datetime.now().astimezone()
TODAY = NOW.replace(microsecond=123456).isoformat()
TOMORROW = (NOW + timedelta(days=1)).isoformat()
ERROR = "wasm trap: wasm `unreachable` instruction executed at 0x1234 in function run " * 2
STATES = ("succeeded", "failed", "timed_out", "running", "pending", "cancelled")


def run(index: int) -> dict[str, Any]:
    state = STATES[index % len(STATES)]
    started = state not in ("pending", "cancelled")
    return {
        "index": index,
        "due_at": TODAY,
        "state": state,
        "worker": PEER if started else None,
        "started_at": TODAY if started else None,
        "finished_at": TOMORROW if started and state != "running" else None,
        "result": "18446744073709551615" if state == "succeeded" else "",
        "error": ERROR if state in ("failed", "timed_out") else "",
        "attempts": [],
    }


def big_task(runs: range) -> dict[str, Any]:
    return {
        "id": "hash-puzzle-" + "x" * 60,
        "state": "running",
        "run_count": 100_000,
        "runs_offset": runs.start,
        "runs": [run(k) for k in runs],
    }


def render(renderable: Any, width: int) -> list[str]:
    console = Console(width=width, file=io.StringIO(), record=True, color_system=None)
    console.print(renderable)
    return console.export_text().splitlines()


def run_lines(lines: list[str], runs: range) -> dict[int, list[str]]:
    """The lines that start with each run's index."""
    return {k: [line for line in lines if line.lstrip().startswith(f"{k} ")] for k in runs}


def test_a_page_of_runs_fits_80_columns_one_line_per_run() -> None:
    runs = range(99_900, 100_000)
    lines = render(runs_table(big_task(runs)), 80)
    assert all(len(line) <= 80 for line in lines), max(lines, key=len)
    per_run = run_lines(lines, runs)
    assert all(len(found) == 1 for found in per_run.values()), per_run
    succeeded = per_run[99_900][0]  # index 99,900 is STATES[0]
    assert short_peer(PEER) in succeeded
    assert PEER not in "\n".join(lines)
    assert short_time(TODAY) in succeeded and short_time(TOMORROW) in succeeded
    assert "18446744073709551615" in succeeded  # a u64 result is whole


def test_wide_shows_full_peer_ids_times_and_errors() -> None:
    runs = range(99_900, 99_912)
    lines = render(runs_table(big_task(runs), wide=True), WIDE_WIDTH)
    per_run = run_lines(lines, runs)
    assert all(len(found) == 1 for found in per_run.values())
    assert PEER in per_run[99_900][0] and TODAY in per_run[99_900][0]
    assert ERROR.strip() in per_run[99_901][0]


def test_the_task_list_fits_80_columns() -> None:
    tasks = [
        {
            "id": f"task-{k}",
            "state": "running",
            "completions": 99_999,
            "runs": 100_000,
            "next_due_at": TOMORROW,
            "received_at": TODAY,
            "description": "a description far too long to fit in any column " * 3,
        }
        for k in range(20)
    ]
    lines = render(tasks_table(tasks), 80)
    assert all(len(line) <= 80 for line in lines), max(lines, key=len)
    for k in range(20):
        (line,) = [s for s in lines if s.startswith(f"task-{k} ")]
        assert "99999/100000" in line and short_time(TODAY) in line
    wide = "\n".join(render(tasks_table(tasks, wide=True), WIDE_WIDTH))
    assert tasks[0]["description"].strip() in wide and TOMORROW in wide


def test_short_values() -> None:
    assert short_peer(PEER) == "12D3KooW…peTP"
    assert short_peer(None) == "-" and short_peer("12D3KooWabc") == "12D3KooWabc"
    assert short_time(TODAY) == NOW.strftime("%H:%M:%S")
    assert short_time(TOMORROW) == (NOW + timedelta(days=1)).strftime("%m-%d %H:%M")
    assert short_time(None) == "-"


def test_the_page_says_how_many_runs_are_left() -> None:
    assert more_runs_line(big_task(range(100))) == (
        "runs 0-99 of 100000 shown; 99900 more (--all to show every run)"
    )
    assert more_runs_line(big_task(range(99_900, 100_000))) == "runs 99900-99999 of 100000 shown"
    small = {**big_task(range(3)), "run_count": 3}
    assert more_runs_line(small) is None
