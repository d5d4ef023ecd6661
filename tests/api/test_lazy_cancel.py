"""A cancel turns only a first chunk of a task's runs not started
`cancelled` and leaves the rest to the settler
(services.settle_cancellations); meanwhile every read counts and shows them
cancelled, the scheduler is never handed one, and a re-run does not bring
them back. Counts are checked against the table with raw SQL, the runs
made to end through the journal's writer (the real write path)."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.db import connection
from django.test import Client
from django.utils import timezone
from prometheus_client.parser import text_string_to_metric_families

from tasks_app import run_records, selectors, services
from tasks_app.journal import RunEnded, RunSent
from tasks_app.models import Iteration, PendingCancellation, Task
from tests.api.forms import form

pytestmark = pytest.mark.django_db

STATES = ("pending", "running", "succeeded", "failed", "timed_out", "cancelled")
RUNS = 300
NOW_RUNS = 50  # the cancel's own chunk here (CANCEL_NOW_RUNS is 1,000)


@pytest.fixture(autouse=True)
def small_chunks(monkeypatch: pytest.MonkeyPatch) -> None:
    """Chunks small enough that a task of RUNS runs spans several."""
    monkeypatch.setattr(services, "CANCEL_NOW_RUNS", NOW_RUNS)


def big_task(client: Client, task_id: str = "big", runs: int = RUNS) -> None:
    """A task of `runs` runs, none due for an hour."""
    response = client.post("/tasks", form(id=task_id, start="3600", delay="1", repeats=str(runs)))
    assert response.status_code == 201, response.content


def end_runs(task_id: str, outcomes: dict[int, str]) -> None:
    """Send run k of the task and end it with `outcomes[k]` ("running":
    sent, not ended), through the journal's writer."""
    rows = dict(_sql('SELECT "index", id FROM tasks_app_iteration WHERE task_id = %s', [task_id]))
    now = timezone.now()
    records: list[Any] = []
    for index, outcome in outcomes.items():
        run_id = rows[index]
        records.append(RunSent(run_id, task_id, index, 1, "12D3KooWTest", now))
        if outcome != "running":
            records.append(
                RunEnded(
                    run_id,
                    task_id,
                    index,
                    1,
                    "12D3KooWTest",
                    outcome=outcome,
                    run_state=outcome,
                    started_at=now,
                    finished_at=now,
                )
            )
    run_records.record_runs(records)


def _sql(query: str, params: list[Any]) -> list[tuple[Any, ...]]:
    with connection.cursor() as cursor:
        cursor.execute(query, params)
        return cursor.fetchall()


def rows_by_state(task_id: str) -> dict[str, int]:
    """The table's own counts (no shown-as-cancelled rule applied)."""
    counts = dict.fromkeys(STATES, 0)
    counts.update(
        _sql(
            "SELECT state, COUNT(*) FROM tasks_app_iteration WHERE task_id = %s GROUP BY state",
            [task_id],
        )
    )
    return counts


def shown_by_state(task_id: str) -> dict[str, int]:
    """What a reader must be shown, from the table by raw SQL: a cancelled
    task's pending runs are cancelled."""
    counts = rows_by_state(task_id)
    [(cancelled_at,)] = _sql("SELECT cancelled_at FROM tasks_app_task WHERE id = %s", [task_id])
    if cancelled_at is not None:
        counts["cancelled"] += counts["pending"]
        counts["pending"] = 0
    return counts


def backlog() -> list[str]:
    return sorted(PendingCancellation.objects.values_list("task_id", flat=True))


def settle_all() -> int:
    """Call the settler until it has nothing left; how many calls it took."""
    calls = 0
    while services.settle_cancellations(limit=100):
        calls += 1
        assert calls < 100, "the settler never finishes"
    return calls


def test_delete_counts_every_run_not_started_cancelled_while_rows_convert(
    client: Client,
) -> None:
    big_task(client)
    end_runs("big", {0: "succeeded", 1: "running", 2: "failed"})

    body = client.delete("/tasks/big").json()

    expected = {
        "pending": 0,
        "running": 1,
        "succeeded": 1,
        "failed": 1,
        "timed_out": 0,
        "cancelled": RUNS - 3,
    }
    assert body["runs_by_state"] == expected
    assert body["completions"] == 1 and body["cancelled_at"]
    # Only the cancel's own chunk is converted in the table; the task waits
    # in the settler's backlog for the rest.
    rows = rows_by_state("big")
    assert rows["cancelled"] == NOW_RUNS
    assert rows["pending"] == RUNS - 3 - NOW_RUNS
    assert backlog() == ["big"]
    # Every read shows them cancelled meanwhile: the detail, a deep page of
    # runs, the listing, the status page.
    detail = client.get(f"/tasks/big?runs_offset={RUNS - 100}").json()
    assert detail["runs_by_state"] == expected == shown_by_state("big")
    assert {run["state"] for run in detail["runs"]} == {"cancelled"}
    assert {run["finished_at"] for run in detail["runs"]} == {body["cancelled_at"]}
    [listed] = [t for t in client.get("/tasks").json() if t["id"] == "big"]
    assert listed["completions"] == 1 and listed["next_due_at"] is None
    assert listed["state"] == "running"  # one run is still being interrupted
    [row] = [t for t in client.get("/api/status").json()["tasks"] if t["id"] == "big"]
    assert row["counts"] == expected and row["finished"] == RUNS - 1
    page = client.get("/status/tasks/big/?page=3").content.decode()  # runs 200-299
    shown = re.findall(r'<tbody class="run" data-run="\d+" data-state="(\w+)"', page)
    assert shown == ["cancelled"] * 100
    # And /metrics' runs by state (no other task here).
    scraped = {
        s.labels["state"]: s.value
        for family in text_string_to_metric_families(client.get("/metrics").content.decode())
        if family.name == "ww_runs"
        for s in family.samples
    }
    assert scraped == expected


def test_the_settler_converts_the_rest_in_chunks_and_leaves_the_backlog(
    client: Client,
) -> None:
    big_task(client)
    big_task(client, "other", runs=10)  # not cancelled: left alone
    end_runs("big", {0: "succeeded"})
    summary = client.delete("/tasks/big").json()
    cancelled_at = Task.objects.get(pk="big").cancelled_at

    # One chunk, then stop: the backlog keeps what is left (as over a
    # restart), and the next call resumes there.
    assert services.settle_cancellations(limit=100) == 100
    assert backlog() == ["big"]
    assert rows_by_state("big")["pending"] == RUNS - 1 - NOW_RUNS - 100
    assert client.get("/tasks/big").json()["runs_by_state"] == summary["runs_by_state"]

    assert settle_all() >= 1
    assert backlog() == []
    assert rows_by_state("big") == {
        **dict.fromkeys(STATES, 0),
        "succeeded": 1,
        "cancelled": RUNS - 1,
    }
    ended = Iteration.objects.filter(task_id="big", state="cancelled")
    assert set(ended.values_list("finished_at", flat=True)) == {cancelled_at}
    assert rows_by_state("other") == {**dict.fromkeys(STATES, 0), "pending": 10}
    assert client.get("/tasks/big").json()["runs_by_state"] == summary["runs_by_state"]
    assert services.settle_cancellations() == 0  # nothing left: harmless


def test_the_scheduler_is_never_handed_a_run_the_settler_has_not_reached(
    client: Client,
) -> None:
    big_task(client)
    big_task(client, "other", runs=5)
    client.delete("/tasks/big")
    assert rows_by_state("big")["pending"] > 0  # still in the table as pending
    due = selectors.due_runs(due_before=timezone.now() + timedelta(days=1))
    assert {run.task_id for run in due} == {"other"}
    assert selectors.due_runs(task_id="big") == []


def test_a_rerun_after_a_cancel_does_not_revive_runs_the_settler_has_not_reached(
    client: Client,
) -> None:
    big_task(client)
    end_runs("big", {0: "failed", 1: "timed_out", 2: "succeeded"})
    client.delete("/tasks/big")
    assert rows_by_state("big")["pending"] == RUNS - 3 - NOW_RUNS

    assert services.rerun_failed(task_id="big") == 2

    task = Task.objects.get(pk="big")
    assert task.cancelled_at is None  # re-opened
    assert backlog() == []
    assert rows_by_state("big") == {
        **dict.fromkeys(STATES, 0),
        "pending": 2,  # the re-run ones, and only those
        "succeeded": 1,
        "cancelled": RUNS - 3,
    }
    assert sorted(run.index for run in selectors.due_runs(task_id="big")) == [0, 1]
    body = client.get("/tasks/big").json()
    assert body["runs_by_state"] == shown_by_state("big") == rows_by_state("big")
    assert body["next_due_at"] is not None


def test_listing_counts_match_the_table(client: Client) -> None:
    """Tasks in every shape on one page: new, part run, cancelled with rows
    left to convert, cancelled and settled, re-opened by a re-run."""
    big_task(client, "new", runs=40)
    big_task(client, "part", runs=40)
    end_runs("part", {0: "succeeded", 1: "succeeded", 2: "failed", 3: "timed_out", 4: "running"})
    big_task(client, "cancelling")
    end_runs("cancelling", {5: "succeeded", 6: "running"})
    client.delete("/tasks/cancelling")
    big_task(client, "settled", runs=120)
    end_runs("settled", {0: "failed"})
    client.delete("/tasks/settled")
    big_task(client, "reopened", runs=120)
    end_runs("reopened", {3: "failed", 4: "succeeded"})
    client.delete("/tasks/reopened")
    services.rerun_failed(task_id="reopened")
    _settle_only("settled")
    assert backlog() == ["cancelling"]

    listing = {t["id"]: t for t in client.get("/tasks").json()}
    for task_id in ("new", "part", "cancelling", "settled", "reopened"):
        shown = shown_by_state(task_id)
        listed = listing[task_id]
        assert listed["completions"] == shown["succeeded"], task_id
        assert listed["runs"] == sum(shown.values()), task_id
        assert listed["state"] == _expected_state(shown), task_id
        assert client.get(f"/tasks/{task_id}").json()["runs_by_state"] == shown, task_id
        first_due = _sql(
            "SELECT MIN(due_at) FROM tasks_app_iteration i JOIN tasks_app_task t"
            " ON t.id = i.task_id WHERE i.task_id = %s AND i.state = 'pending'"
            " AND t.cancelled_at IS NULL",
            [task_id],
        )[0][0]
        assert (listed["next_due_at"] is None) == (first_due is None), task_id


def _settle_only(task_id: str) -> None:
    """Settle one task's cancel all the way, leaving the others' backlog."""
    others = list(PendingCancellation.objects.exclude(task_id=task_id).values_list("pk", flat=True))
    PendingCancellation.objects.filter(pk__in=others).delete()
    settle_all()
    PendingCancellation.objects.bulk_create([PendingCancellation(task_id=pk) for pk in others])


def _expected_state(shown: dict[str, int]) -> str:
    runs = sum(shown.values())
    finished = shown["succeeded"] + shown["failed"] + shown["timed_out"] + shown["cancelled"]
    if finished == runs:
        if shown["succeeded"] == runs:
            return "succeeded"
        return "failed" if shown["failed"] + shown["timed_out"] else "cancelled"
    return "running" if finished or shown["running"] else "scheduled"


def test_the_admin_shows_runs_the_settler_has_not_reached_as_cancelled(client: Client) -> None:
    User.objects.create_superuser("admin", "admin@example.com", "pw-for-tests")
    client.login(username="admin", password="pw-for-tests")
    big_task(client)
    big_task(client, "open", runs=3)
    end_runs("big", {0: "succeeded"})
    client.delete("/tasks/big")
    assert rows_by_state("big")["pending"] > 0

    # The task list's state filter, and the task's page.
    assert _listed(client, "/admin/tasks_app/task/?state=cancelled") == ["big"]
    assert _listed(client, "/admin/tasks_app/task/?state=scheduled") == ["open"]
    assert _listed(client, "/admin/tasks_app/task/?state=running") == []
    page = client.get("/admin/tasks_app/task/big/change/").content.decode()
    assert f"1 succeeded, 0 failed, 0 timed out, {RUNS - 1} cancelled, 0 running, 0 pending" in page
    # The runs list: its state filter and column go by what is shown.
    runs = Iteration.objects.filter(task_id="big")
    pending = client.get("/admin/tasks_app/iteration/?state=pending")
    assert pending.context["cl"].result_count == 3  # only the open task's
    shown = client.get("/admin/tasks_app/iteration/?state=cancelled")
    assert shown.context["cl"].result_count == runs.count() - 1
    column = _column(client, "/admin/tasks_app/iteration/?task__id__exact=big")
    assert len(column) == 100 and set(column) <= {"succeeded", "cancelled"}, column


def _listed(client: Client, url: str) -> list[str]:
    """The ids an admin change list shows."""
    return sorted(row.pk for row in client.get(url).context["cl"].result_list)


def _column(client: Client, url: str) -> list[str]:
    """The runs list's state column, as the page shows it."""
    page = client.get(url).content.decode()
    return re.findall(r'<td class="field-shown_state">(\w+)</td>', page)
