"""Schedules over REST (Django's test client, SQLite): create, list, read
with the next fire times and last firings, change, pause and resume,
trigger, delete; each firing is a task `<name>@<fire time>` with one run
due at its fire time, made once."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from django.test import Client

from tasks_app import fire_times, firing
from tasks_app.models import Iteration, MissedFirings, Schedule, Task
from tests.api.forms import HASH_WASM

pytestmark = pytest.mark.django_db


def upload(client: Client) -> str:
    response = client.post("/modules", HASH_WASM, content_type="application/wasm")
    assert response.status_code in (200, 201), response.content
    return str(response.json()["sha256"])


def post(client: Client, path: str, body: Any) -> Any:
    return client.post(path, body, content_type="application/json")


def patch(client: Client, path: str, body: Any) -> Any:
    return client.patch(path, body, content_type="application/json")


def test_a_schedule_makes_its_first_firing_as_a_task(client: Client) -> None:
    module = upload(client)
    response = post(
        client,
        "/schedules",
        {"name": "tick", "module": module, "every": 60, "input": 7, "env": {"A": "b"}},
    )
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["name"] == "tick" and body["every"] == 60 and body["overlap"] == "skip"
    assert body["catchup_window"] == 60 and body["timezone"] == "UTC"
    assert len(body["next_fire_times"]) == 5
    first = datetime.fromisoformat(body["next_fire_times"][0])
    assert first.microsecond == 0
    task = Task.objects.get(schedule__name="tick")
    assert task.pk == fire_times.firing_id("tick", first)
    assert task.pk.startswith("tick@") and task.pk.endswith("Z")
    assert task.input == 7 and task.env == {"A": "b"}
    run = Iteration.objects.get(task=task)
    assert run.due_at == first and run.state == "pending"
    assert client.get(f"/tasks/{task.pk}").json()["schedule"] == "tick"
    listed = client.get("/schedules").json()
    assert [s["name"] for s in listed] == ["tick"]
    again = post(client, "/schedules", {"name": "tick", "module": module, "every": 5})
    assert again.status_code == 409 and again.json()["field"] == "name"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"every": 5, "cron": "* * * * *"}, "every"),
        ({}, "every"),
        ({"cron": "61 * * * *"}, "cron"),
        ({"cron": "* * *"}, "cron"),
        ({"cron": "* * * * *", "timezone": "Mars/Olympus"}, "timezone"),
        ({"every": 0.01}, "every"),
        ({"every": 5, "overlap": "sometimes"}, "overlap"),
        ({"every": 5, "repeats": 3}, "repeats"),
        ({"every": 5, "bogus": 1}, "bogus"),
        ({"every": 5, "name": "a@b"}, "name"),
    ],
)
def test_bad_schedules_are_refused_naming_the_field(
    client: Client, body: dict[str, Any], field: str
) -> None:
    module = upload(client)
    response = post(client, "/schedules", {"name": "s", "module": module, **body})
    assert response.status_code == 400, response.content
    assert response.json()["field"] == field
    assert not Schedule.objects.exists() and not Task.objects.exists()


def test_cron_with_seconds_in_a_zone(client: Client) -> None:
    module = upload(client)
    response = post(
        client,
        "/schedules",
        {"name": "c", "module": module, "cron": "30 15 2 * * *", "timezone": "Europe/Paris"},
    )
    assert response.status_code == 201, response.content
    times = [datetime.fromisoformat(t) for t in response.json()["next_fire_times"]]
    paris = fire_times.zone_of("Europe/Paris")
    assert all(t.astimezone(paris).strftime("%M:%S") == "15:30" for t in times)
    assert times == sorted(set(times))


def test_trigger_pause_resume_delete(client: Client) -> None:
    module = upload(client)
    soon = (datetime.now(UTC) + timedelta(minutes=10)).replace(microsecond=0)
    made = post(
        client,
        "/schedules",
        {"name": "p", "module": module, "every": 3600, "start_at": soon.isoformat()},
    )
    assert made.status_code == 201, made.content
    head = Schedule.objects.get().next_fire_at
    triggered = post(client, "/schedules/p/trigger", {})
    assert triggered.status_code == 201, triggered.content
    task_id = triggered.json()["id"]
    assert task_id.startswith("p@") and Task.objects.get(pk=task_id).schedule is not None
    assert Schedule.objects.get().next_fire_at == head  # a trigger is not the chain's

    paused = patch(client, "/schedules/p", {"paused": True})
    assert paused.status_code == 200 and paused.json()["next_fire_times"] == []
    resumed = patch(client, "/schedules/p", {"paused": False})
    assert resumed.json()["next_fire_at"] == head.isoformat()  # the head was kept

    later = (head + timedelta(hours=1)).isoformat()
    moved = patch(client, "/schedules/p", {"start_at": later, "input": 3})
    assert moved.status_code == 200, moved.content
    old = fire_times.firing_id("p", head)
    assert Task.objects.get(pk=old).cancelled_at is not None
    new_head = Schedule.objects.get().next_fire_at
    assert new_head == head + timedelta(hours=1)
    assert Task.objects.get(pk=fire_times.firing_id("p", new_head)).input == 3

    detail = client.get("/schedules/p").json()
    assert {f["task"] for f in detail["last_firings"]} >= {task_id, old}
    assert client.delete("/schedules/p").status_code == 204
    assert client.get("/schedules/p").status_code == 404
    assert Task.objects.get(pk=fire_times.firing_id("p", new_head)).cancelled_at is not None


def test_advance_makes_the_next_firing_once() -> None:
    from tasks_app import schedule_services
    from tasks_app.models import Module

    Module.objects.create(sha256="a" * 64, wasm=HASH_WASM, size=len(HASH_WASM), kind="run")
    schedule = schedule_services.create_schedule(
        name="a", module_id="a" * 64, every=1.0, template={}
    )
    head = schedule.next_fire_at
    assert head is not None
    following = firing.advance(schedule.pk, head)
    assert following == head + timedelta(seconds=1)
    assert firing.advance(schedule.pk, head) is None  # decided twice: advanced once
    assert Task.objects.filter(schedule=schedule).count() == 2
    assert Schedule.objects.get().fired_count == 2


def test_catch_up_runs_the_young_missed_fire_times_and_records_the_old() -> None:
    from tasks_app import schedule_services
    from tasks_app.models import Module

    Module.objects.create(sha256="a" * 64, wasm=HASH_WASM, size=len(HASH_WASM), kind="run")
    start = datetime(2026, 1, 1, tzinfo=UTC)
    schedule = schedule_services.create_schedule(
        name="m", module_id="a" * 64, every=10.0, start_at=start, template={}, catchup_window=30
    )
    # The gateway was down from the first fire time until 100 s later.
    Schedule.objects.filter(pk=schedule.pk).update(next_fire_at=start)
    Task.objects.filter(schedule=schedule).delete()
    firing.make_firing(Schedule.objects.get(), start)
    now = start + timedelta(seconds=100)
    made = firing.catch_up_all(now=now)
    # 70, 80, 90, 100 s are within 30 s of now: run; 0 .. 60 s skipped; 110 s the head.
    assert made == 5
    pending = sorted(
        Iteration.objects.filter(task__schedule=schedule, state="pending").values_list(
            "due_at", flat=True
        )
    )
    assert pending == [start + timedelta(seconds=s) for s in (70, 80, 90, 100, 110)]
    first = Iteration.objects.get(task_id=fire_times.firing_id("m", start))
    assert first.state == "cancelled" and "missed" in first.error
    missed = MissedFirings.objects.get()
    assert missed.count == 6 and missed.first_fire_at == start + timedelta(seconds=10)
    assert missed.last_fire_at == start + timedelta(seconds=60)
    again = firing.catch_up_all(now=now)  # a second start: nothing twice
    assert again == 0 and MissedFirings.objects.count() == 1


def test_the_status_page_and_the_cli_tables_show_schedules(client: Client) -> None:
    from rich.console import Console

    from tasks_app.management.commands.schedules import schedule_table, schedules_table

    module = upload(client)
    post(client, "/schedules", {"name": "shown", "module": module, "cron": "*/5 * * * *"})
    status = client.get("/api/status").json()
    assert [s["name"] for s in status["schedules"]] == ["shown"]
    row = status["schedules"][0]
    assert row["when"] == "*/5 * * * * (UTC)" and row["next_fire_at"] is not None
    assert "Schedules" in client.get("/").content.decode()
    out = Console(width=200, record=True)
    out.print(schedules_table(client.get("/schedules").json()))
    out.print(schedule_table(client.get("/schedules/shown").json()))
    text = out.export_text()
    assert "shown" in text and "*/5 * * * * (UTC)" in text and "next: " in text
    assert fire_times.firing_id("shown", datetime.fromisoformat(row["next_fire_at"])) in text


def test_a_stalled_chain_is_repaired_and_a_late_head_left_alone() -> None:
    from tasks_app import schedule_services
    from tasks_app.models import Module

    Module.objects.create(sha256="a" * 64, wasm=HASH_WASM, size=len(HASH_WASM), kind="run")
    schedule = schedule_services.create_schedule(
        name="r", module_id="a" * 64, every=60.0, template={}
    )
    head = schedule.next_fire_at
    assert head is not None
    later = head + timedelta(seconds=30)
    assert firing.repair_chains(now=later) == 0  # pending, merely late: left alone
    Iteration.objects.filter(task__schedule=schedule).update(state="succeeded")
    assert firing.repair_chains(now=later) == 1  # decided, the next never made
    assert Schedule.objects.get().next_fire_at == head + timedelta(seconds=60)


def test_fire_times_at_the_end_of_time_do_not_break_the_api(client: Client) -> None:
    module = upload(client)
    body = {"name": "end", "module": module, "every": 3600, "start_at": "9999-12-31T23:00:00Z"}
    response = post(client, "/schedules", body)
    assert response.status_code == 201, response.content
    assert response.json()["next_fire_times"] == ["9999-12-31T23:00:00+00:00"]
    huge = post(client, "/schedules", {"name": "huge", "module": module, "every": 1e300})
    assert huge.status_code == 400 and huge.json()["field"] == "every"
