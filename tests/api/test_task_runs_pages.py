"""`GET /tasks/<id>` pages a task's runs (`?runs_limit`, `?runs_offset`,
default 100, Link header to the neighbours) and counts them by state in
`runs_by_state`; `DELETE /tasks/<id>` answers the task's summary, not its
runs, and announces a bounded number of run events."""

from __future__ import annotations

from typing import Any

import pytest
from asgiref.sync import async_to_sync
from django.db import connection
from django.test import Client

from tasks_app import events
from tasks_app.services import ANNOUNCED_RUNS
from tests.api.forms import form
from tests.api.test_run_events import _received

pytestmark = pytest.mark.django_db

STATES = ("pending", "running", "succeeded", "failed", "timed_out", "cancelled")
RUNS = 250


def big_task(client: Client, task_id: str = "big", runs: int = RUNS) -> None:
    """A task of `runs` runs, none due for an hour."""
    response = client.post("/tasks", form(id=task_id, start="3600", delay="1", repeats=str(runs)))
    assert response.status_code == 201, response.content


def set_states(task_id: str, state_of: dict[int, str]) -> None:
    """Give runs states straight in the table (not through the code under test)."""
    with connection.cursor() as cursor:
        for index, state in state_of.items():
            cursor.execute(
                'UPDATE tasks_app_iteration SET state = %s WHERE task_id = %s AND "index" = %s',
                [state, task_id, index],
            )
        # Succeeded runs are read from the task row, which the journal keeps.
        cursor.execute(
            "UPDATE tasks_app_task SET succeeded_count = (SELECT COUNT(*) FROM"
            " tasks_app_iteration WHERE task_id = %s AND state = 'succeeded') WHERE id = %s",
            [task_id, task_id],
        )


def count_in_table(task_id: str, state: str) -> int:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT COUNT(*) FROM tasks_app_iteration WHERE task_id = %s AND state = %s",
            [task_id, state],
        )
        return int(cursor.fetchone()[0])


def link(response: Any, rel: str) -> str | None:
    """The URL of `rel` in the response's Link header, or None."""
    for part in response.get("Link", "").split(","):
        if f'rel="{rel}"' in part:
            return part.split(">")[0].strip().lstrip("<")
    return None


def test_a_tasks_runs_come_a_page_at_a_time_with_links_to_the_next(client: Client) -> None:
    big_task(client)
    first = client.get("/tasks/big")
    body = first.json()
    assert [run["index"] for run in body["runs"]] == list(range(100))  # the default page
    assert body["run_count"] == RUNS
    assert (body["runs_offset"], body["runs_limit"]) == (0, 100)
    assert link(first, "prev") is None

    seen = [run["index"] for run in body["runs"]]
    page = first
    while (next_url := link(page, "next")) is not None:
        assert "runs_offset=" in next_url and "runs_limit=100" in next_url
        page = client.get(next_url)
        assert page.status_code == 200
        assert link(page, "prev") is not None
        seen += [run["index"] for run in page.json()["runs"]]
    assert seen == list(range(RUNS))  # every run once, in order, over three pages
    assert page.json()["runs_offset"] == 200 and len(page.json()["runs"]) == 50

    middle = client.get("/tasks/big?runs_limit=7&runs_offset=120").json()
    assert [run["index"] for run in middle["runs"]] == list(range(120, 127))
    assert set(middle["runs"][0]) >= {"index", "due_at", "state", "worker", "attempts"}
    past_the_end = client.get("/tasks/big?runs_offset=5000")
    assert past_the_end.status_code == 200 and past_the_end.json()["runs"] == []


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("runs_limit=0", "runs_limit"),
        ("runs_limit=1001", "runs_limit"),
        ("runs_limit=ten", "runs_limit"),
        ("runs_limit=-5", "runs_limit"),
        ("runs_offset=-1", "runs_offset"),
        ("runs_offset=1.5", "runs_offset"),
    ],
)
def test_bad_page_parameters_are_400_naming_the_parameter(
    client: Client, query: str, field: str
) -> None:
    big_task(client, runs=3)
    response = client.get(f"/tasks/big?{query}")
    assert response.status_code == 400, response.content
    assert response.json()["field"] == field
    assert response.json()["problem"]


def test_the_largest_page_is_1000_runs(client: Client) -> None:
    big_task(client, runs=1200)
    body = client.get("/tasks/big?runs_limit=1000").json()
    assert len(body["runs"]) == 1000


def test_runs_by_state_counts_what_the_table_holds(client: Client) -> None:
    big_task(client)
    # Run k gets STATES[k % 7] (k % 7 == 6 stays pending): counts known here.
    state_of = {k: STATES[k % 7] for k in range(RUNS) if k % 7 < len(STATES)}
    set_states("big", state_of)
    expected = dict.fromkeys(STATES, 0)
    for k in range(RUNS):
        expected[state_of.get(k, "pending")] += 1

    body = client.get("/tasks/big?runs_limit=1").json()  # counts do not depend on the page
    assert body["runs_by_state"] == expected
    assert body["completions"] == expected["succeeded"]
    assert body["state"] == "running"
    assert len(body["runs"]) == 1


def test_a_new_tasks_counts_have_every_state(client: Client) -> None:
    big_task(client, runs=3)
    body = client.get("/tasks/big").json()
    assert body["runs_by_state"] == {state: 3 if state == "pending" else 0 for state in STATES}


def test_delete_answers_the_summary_with_counts_and_no_runs(client: Client) -> None:
    big_task(client)
    set_states("big", {0: "succeeded", 1: "running", 2: "failed"})

    response = client.delete("/tasks/big")
    assert response.status_code == 200
    body = response.json()
    assert body["runs"] == RUNS  # the listing's count, not a list of runs
    assert not any(isinstance(value, list) for value in body.values())
    assert body["runs_by_state"] == {
        "pending": 0,
        "running": 1,  # interrupted by the gateway; ends when its worker answers
        "succeeded": 1,
        "failed": 1,
        "timed_out": 0,
        "cancelled": RUNS - 3,
    }
    assert body["cancelled_at"]
    assert count_in_table("big", "cancelled") == RUNS - 3
    assert count_in_table("big", "pending") == 0
    again = client.delete("/tasks/big")  # harmless, and the same counts
    assert again.status_code == 200 and again.json()["runs_by_state"] == body["runs_by_state"]


def test_a_cancel_announces_only_its_first_runs(
    client: Client, layer: Any, django_capture_on_commit_callbacks: Any
) -> None:
    big_task(client)
    async_to_sync(layer.group_add)(events.task_group("big"), "watcher.big")
    with django_capture_on_commit_callbacks(execute=True):
        assert client.delete("/tasks/big").status_code == 200

    announced = [e for m in _received(layer, "watcher.big") for e in m["events"]]
    assert [(e["index"], e["state"]) for e in announced] == [
        (k, "cancelled") for k in range(ANNOUNCED_RUNS)
    ]
    assert ANNOUNCED_RUNS < RUNS
