"""Schedule policies end to end, against one real gateway and two real
workers in a private network namespace (nothing mocked): overlap
`buffer_one` and `allow` with runs longer than the interval; a cron in zones
whose offset changes seconds from now (a private tz database built with
zic, read by the gateway through PYTHONTZPATH), across a jump forward and a
jump back; priority ordering under saturation; pause, resume and trigger
from the admin, logged in over HTTP.

The cluster is shared by the module: worker `wide` (queue default,
concurrency 4) runs the schedules, worker `narrow` (queue prio, concurrency
1) the priority test's runs. Each test deletes its schedules when it ends."""

from __future__ import annotations

import itertools
import os
import re
import shutil
import subprocess
import sys
import time
import zoneinfo
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.cluster import HTTP, MANAGE, PROJECT_ROOT, Cluster, running_cluster
from tests.faults.harness import NOOP_WAT, db, wasm

# run(ms, _) sleeps `ms` milliseconds in WASI poll_oneoff (relative clock,
# monotonic) and returns ms: a slow run that costs no CPU.
SLEEP_WAT = """
(module
  (import "wasi_snapshot_preview1" "poll_oneoff" (func $poll (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (func (export "run") (param $ms i64) (param $d i64) (result i64)
    (i32.store (i32.const 16) (i32.const 1))
    (i64.store (i32.const 24) (i64.mul (local.get $ms) (i64.const 1000000)))
    (drop (call $poll (i32.const 0) (i32.const 256) (i32.const 1) (i32.const 512)))
    (local.get $ms)))
"""
PRIO_QUEUE = "prio"
ADMIN_PASSWORD = "pw-for-e2e-admin"
SECOND = timedelta(seconds=1)


@dataclass
class Shared:
    cluster: Cluster
    tzdb: Path
    sleeper: str  # sha256 of SLEEP_WAT
    noop: str
    narrow: str  # the prio worker's peer ID


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Shared]:
    state = tmp_path_factory.mktemp("policies")
    tzdb = state / "tzdb"
    tzdb.mkdir()
    # The gateway's zoneinfo looks in PYTHONTZPATH first; the zones made
    # here exist nowhere else (not in the tzdata package either). The
    # system's zones stay after them (UTC, the project's TIME_ZONE, is read
    # from there: with the private directory alone a gateway without the
    # tzdata package answered every upload 500).
    tzpath = os.pathsep.join([str(tzdb), *zoneinfo.TZPATH])
    with running_cluster(state, PYTHONTZPATH=tzpath) as cluster:
        wide = cluster.start_worker("--concurrency", "4", "--queues", "default")
        narrow = cluster.start_worker("--concurrency", "1", "--queues", PRIO_QUEUE)
        cluster.wait_joined(wide)
        cluster.wait_joined(narrow)
        yield Shared(
            cluster=cluster,
            tzdb=tzdb,
            sleeper=_module(cluster, SLEEP_WAT),
            noop=_module(cluster, NOOP_WAT),
            narrow=narrow,
        )


@pytest.fixture
def schedules(shared: Shared) -> Iterator[list[str]]:
    """Names of the schedules a test makes: deleted when it ends."""
    names: list[str] = []
    yield names
    for name in names:
        shared.cluster.request("DELETE", f"/schedules/{name}")


def _module(cluster: Cluster, wat: str) -> str:
    response = cluster.request(
        "POST", "/modules", content=wasm(wat), headers={"Content-Type": "application/wasm"}
    )
    assert response.status_code in (200, 201), response.text
    return str(response.json()["sha256"])


def _schedule(cluster: Cluster, names: list[str], **body: Any) -> dict[str, Any]:
    response = cluster.request("POST", "/schedules", json=body)
    assert response.status_code == 201, response.text
    names.append(body["name"])
    return dict(response.json())


def _utc(text: str | None) -> datetime | None:
    if text is None:
        return None
    at = datetime.fromisoformat(text)
    return at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)


def _fire_time(task_id: str) -> datetime:
    return datetime.fromisoformat(task_id.split("@", 1)[1].replace("Z", "+00:00"))


def _stamp(at: datetime) -> str:
    """A fire time as firing ids write it (whole seconds)."""
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True)
class Firing:
    task_id: str
    fire_at: datetime
    state: str
    error: str
    started_at: datetime | None  # its (first) attempt's, on the worker
    finished_at: datetime | None


def _firings(cluster: Cluster, name: str) -> list[Firing]:
    """The firings of schedule `name` (by task id, so also after it was
    deleted), by fire time, read from the gateway's database."""
    with db(cluster) as conn:
        rows = conn.execute(
            "SELECT i.task_id, i.state, i.error,"
            " (SELECT MIN(a.started_at) FROM tasks_app_attempt a WHERE a.iteration_id = i.id),"
            " (SELECT MAX(a.finished_at) FROM tasks_app_attempt a WHERE a.iteration_id = i.id)"
            " FROM tasks_app_iteration i WHERE i.task_id LIKE ?",
            (f"{name}@%",),
        ).fetchall()
    firings = [
        Firing(tid, _fire_time(tid), state, error, _utc(start), _utc(end))
        for tid, state, error, start, end in rows
    ]
    return sorted(firings, key=lambda f: f.fire_at)


def _ran(firings: list[Firing]) -> list[Firing]:
    """Firings that ran to success, by start."""
    done = [f for f in firings if f.state == "succeeded"]
    assert all(f.started_at and f.finished_at for f in done), done
    return sorted(done, key=lambda f: f.started_at or f.fire_at)


def _most_at_once(spans: list[tuple[datetime, datetime]]) -> int:
    """The most of these [start, end) intervals holding at one instant."""
    edges = sorted([(s, 1) for s, _ in spans] + [(e, -1) for _, e in spans])
    most = now = 0
    for _, step in edges:  # an end sorts before a start at the same instant
        now += step
        most = max(most, now)
    return most


# -- overlap ------------------------------------------------------------------


def test_buffer_one_holds_one_firing_while_one_runs_skips_the_rest_and_runs_it_next(
    shared: Shared, schedules: list[str]
) -> None:
    cluster = shared.cluster
    # Each run sleeps 1.2 s, a firing is due every 0.4 s: while one runs,
    # the next firing waits and the two after it are skipped.
    _schedule(
        cluster,
        schedules,
        name="buffered",
        module=shared.sleeper,
        every=0.4,
        overlap="buffer_one",
        input=1200,
        duration=30,
    )

    def enough() -> list[Firing] | None:
        firings = _firings(cluster, "buffered")
        skipped = [f for f in firings if f.state == "cancelled"]
        return firings if len(_ran(firings)) >= 4 and len(skipped) >= 4 else None

    firings = cluster.wait_for(enough, 30, "buffered firings run and skipped")
    cluster.request("DELETE", "/schedules/buffered")
    decided = [f for f in firings if f.state not in ("pending", "running")]
    ran = _ran(firings)
    skipped = [f for f in decided if f.state != "succeeded"]
    # The rest are skipped, saying why, and never executed.
    assert all(f.state == "cancelled" for f in skipped), skipped
    reason = "skipped: the schedule's previous firing was still running and one waits already"
    assert {f.error for f in skipped} == {reason}, skipped
    assert all(f.started_at is None for f in skipped), skipped
    # Attempts never overlap.
    for before, after in itertools.pairwise(ran):
        assert before.finished_at is not None and after.started_at is not None
        assert after.started_at >= before.finished_at, (before, after)
    # Those due while another ran waited, and ran right after it ended.
    waited = [f for f in ran if f.started_at and f.started_at - f.fire_at > timedelta(seconds=0.2)]
    assert len(waited) >= 3, ran
    for f in waited:
        assert f.started_at is not None
        ends = [g.finished_at for g in ran if g.finished_at and g.finished_at <= f.started_at]
        assert ends, f
        assert f.started_at - max(ends) < timedelta(seconds=1), (f, max(ends))
    # At most one waits at a time: the spans from fire time to start of those
    # that waited never overlap (trimmed by 0.1 s for the run sent ahead).
    spans = [(f.fire_at + timedelta(seconds=0.1), f.started_at) for f in waited if f.started_at]
    assert _most_at_once(spans) == 1, spans


def test_allow_runs_firings_beside_the_previous_one(shared: Shared, schedules: list[str]) -> None:
    cluster = shared.cluster
    _schedule(
        cluster,
        schedules,
        name="beside",
        module=shared.sleeper,
        every=0.4,
        overlap="allow",
        input=1000,
        duration=30,
    )
    firings = cluster.wait_for(
        lambda: (f := _firings(cluster, "beside")) and len(_ran(f)) >= 5 and f,
        30,
        "five firings of beside to run",
    )
    cluster.request("DELETE", "/schedules/beside")
    decided = [f for f in firings if f.state not in ("pending", "running")]
    assert {f.state for f in decided} == {"succeeded"}, decided  # none skipped or held
    ran = _ran(firings)
    for f in ran:  # each started on its fire time, not after the previous ended
        assert f.started_at is not None
        assert f.fire_at <= f.started_at < f.fire_at + SECOND, f
    spans = [(f.started_at, f.finished_at) for f in ran if f.started_at and f.finished_at]
    assert _most_at_once(spans) >= 2, spans  # attempts overlap
    overlapping = [b for a, b in itertools.pairwise(spans) if b[0] < a[1]]
    assert len(overlapping) >= 3, spans


# -- DST with a private tz database ------------------------------------------------


def _compile_zones(tzdb: Path, source: str) -> None:
    zic = shutil.which("zic") or "/usr/sbin/zic"
    if not Path(zic).exists():
        pytest.skip("zic (tzdata's zone compiler) is not installed")
    text = tzdb.parent / f"zones-{time.monotonic_ns()}.txt"
    text.write_text(source)
    subprocess.run([zic, "-d", str(tzdb), str(text)], check=True)


def _until(at: datetime) -> str:
    """zic's UNTIL for the UTC instant `at`."""
    return at.strftime("%Y %b %d %H:%M:%S") + "u"


@dataclass(frozen=True)
class DstCase:
    name: str
    zone: str
    cron: str
    fire: datetime  # the documented fire time today (UTC)
    tomorrow: datetime  # the next one, at the wall time with the offset after the change


def _dst_cases(prefix: str, change: datetime) -> tuple[str, list[DstCase], datetime]:
    """Four zones changing offset at `change` (UTC), as zic source; a daily
    cron in each at a wall time the change skips or shows twice; and when
    the last wall time shown twice comes round again.

    Wall times are naive readings written as UTC plus the offset. `spring`
    (+0:00:10 -> +0:00:30) skips [change+10 s, change+30 s), `fall`
    (+0:00:16 -> +0:00:10) shows [change+10 s, change+16 s) twice: 6-field
    crons. `spring-hour` (+0 -> +1) skips an hour; `fall-hour` (+1:00:b ->
    +0:00:b, b making the first occurrence a whole minute 3 s before the
    change) repeats one: 5-field crons, as most crontabs are."""
    s = timedelta(seconds=1)
    day = timedelta(days=1)
    skipped = change + 20 * s
    twice = change + 13 * s
    hour_skipped = (change + timedelta(minutes=30)).replace(second=0) + timedelta(minutes=1)
    b = (60 - (change - 3 * s).second) % 60
    hour_twice = change - 3 * s + timedelta(hours=1, seconds=b)  # a whole minute
    source = (
        f"Zone {prefix}/Spring 0:00:10 - TST {_until(change)}\n\t0:00:30 - TDT\n"
        f"Zone {prefix}/Fall 0:00:16 - TDT {_until(change)}\n\t0:00:10 - TST\n"
        f"Zone {prefix}/SpringHour 0:00 - HST {_until(change)}\n\t1:00 - HDT\n"
        f"Zone {prefix}/FallHour 1:00:{b:02d} - HDT {_until(change)}\n\t0:00:{b:02d} - HST\n"
    )
    cases = [
        DstCase(
            "spring",
            f"{prefix}/Spring",
            f"{skipped.second} {skipped.minute} {skipped.hour} * * *",
            fire=change,  # documented: the first instant after the gap
            tomorrow=skipped - 30 * s + day,
        ),
        DstCase(
            "fall",
            f"{prefix}/Fall",
            f"{twice.second} {twice.minute} {twice.hour} * * *",
            fire=twice - 16 * s,  # its first occurrence (change - 3 s), not change + 3 s
            tomorrow=twice - 10 * s + day,
        ),
        DstCase(
            "spring-hour",
            f"{prefix}/SpringHour",
            f"{hour_skipped.minute} {hour_skipped.hour} * * *",
            fire=change,
            tomorrow=hour_skipped - timedelta(hours=1) + day,
        ),
        DstCase(
            "fall-hour",
            f"{prefix}/FallHour",
            f"{hour_twice.minute} {hour_twice.hour} * * *",
            fire=change - 3 * s,  # not an hour later
            tomorrow=hour_twice - timedelta(seconds=b) + day,
        ),
    ]
    return source, cases, twice - 10 * s


def test_cron_across_a_jump_forward_and_a_jump_back_fires_once_each_at_the_documented_time(
    shared: Shared, schedules: list[str]
) -> None:
    cluster = shared.cluster
    now = datetime.now(UTC).replace(microsecond=0)
    change = now + timedelta(seconds=8)
    prefix = f"Policies{os.getpid()}x{time.monotonic_ns()}"
    source, cases, fall_again = _dst_cases(prefix, change)
    _compile_zones(shared.tzdb, source)
    for case in cases:
        response = cluster.request(
            "POST",
            "/schedules",
            json={
                "name": case.name,
                "module": shared.noop,
                "cron": case.cron,
                "timezone": case.zone,
                "input": 2,
                "difficulty": 3,
            },
        )
        # A 400 "no IANA time zone" here: the gateway did not read PYTHONTZPATH.
        assert response.status_code == 201, response.text
        schedules.append(case.name)
        body = response.json()
        assert _utc(body["next_fire_at"]) == case.fire, (case, body, now)
    first = min(case.fire for case in cases)
    assert datetime.now(UTC) < first, "set-up took too long to see the first occurrence"

    def all_ran() -> bool:
        return all(
            any(f.state == "succeeded" for f in _firings(cluster, case.name)) for case in cases
        )

    cluster.wait_for(all_ran, 40, "each schedule's firing to run")
    # Past the second occurrence of the repeated wall time, and then some.
    while datetime.now(UTC) < fall_again + timedelta(seconds=1.5):
        time.sleep(0.2)

    for case in cases:
        firings = _firings(cluster, case.name)
        # Exactly one firing today, at the documented instant, and the chain's
        # next one tomorrow at the wall time with the new offset.
        assert [f.task_id for f in firings] == [
            f"{case.name}@{_stamp(case.fire)}",
            f"{case.name}@{_stamp(case.tomorrow)}",
        ], (case, firings, change)
        today, following = firings
        assert today.state == "succeeded" and following.state == "pending", firings
        assert today.started_at is not None
        assert case.fire <= today.started_at < case.fire + 2 * SECOND, today
        detail = cluster.request("GET", f"/schedules/{case.name}").json()
        assert _utc(detail["next_fire_times"][0]) == case.tomorrow, detail
        assert detail["last_firings"][-1]["task"] == today.task_id, detail
        task = cluster.request("GET", f"/tasks/{today.task_id}").json()
        assert task["schedule"] == case.name and task["runs"][0]["result"] == "5", task


# -- priority under saturation --------------------------------------------------------


def _run_starts(cluster: Cluster, *task_ids: str) -> list[tuple[str, int, datetime, str]]:
    """(task id, run index, attempt start, state) of these tasks' runs, by start."""
    marks = ",".join("?" * len(task_ids))
    with db(cluster) as conn:
        rows = conn.execute(
            'SELECT i.task_id, i."index", MIN(a.started_at), i.state'
            " FROM tasks_app_iteration i JOIN tasks_app_attempt a ON a.iteration_id = i.id"
            f" WHERE i.task_id IN ({marks}) GROUP BY i.id",
            task_ids,
        ).fetchall()
    starts = [(tid, int(k), _utc(at), state) for tid, k, at, state in rows]
    return sorted(
        [(tid, k, at, state) for tid, k, at, state in starts if at is not None],
        key=lambda row: row[2],
    )


def _submit(cluster: Cluster, task: dict[str, Any]) -> None:
    response = cluster.request("POST", "/tasks", json=task)
    assert response.status_code == 201, response.text


def _states(cluster: Cluster, task_id: str) -> list[str]:
    return [run["state"] for run in cluster.request("GET", f"/tasks/{task_id}").json()["runs"]]


def test_higher_priority_goes_first_under_saturation_and_low_ones_all_run_after(
    shared: Shared,
) -> None:
    cluster = shared.cluster
    common = {"module": shared.sleeper, "queue": PRIO_QUEUE, "duration": 30}
    # The one slot is taken: everything below queues up behind it.
    _submit(cluster, {**common, "id": "blocker", "input": 1500})
    cluster.wait_for(lambda: _states(cluster, "blocker") == ["running"], 30, "the blocker")
    # All due at once: low ones first in time, the high ones a moment later.
    low = {**common, "id": "low", "input": 60, "repeats": 16, "delay": 0.01, "priority": -5}
    high = {**common, "id": "high", "input": 60, "repeats": 4, "delay": 0.01, "priority": 50}
    _submit(cluster, low)
    _submit(cluster, high)
    assert _states(cluster, "blocker") == ["running"], "the blocker ended too soon"

    # Once the first low one runs, more high ones come: they go before the
    # low ones still waiting.
    cluster.wait_for(lambda: "succeeded" in _states(cluster, "low"), 30, "the first low run to end")
    _submit(cluster, {**high, "id": "high2", "repeats": 3})
    waiting_lows = _states(cluster, "low").count("pending")
    cluster.wait_for(
        lambda: set(_states(cluster, "low")) == {"succeeded"}, 60, "every low run to succeed"
    )
    starts = _run_starts(cluster, "blocker", "low", "high", "high2")
    order = [(tid, k) for tid, k, _, _ in starts]
    assert all(state == "succeeded" for *_, state in starts), starts
    assert order[0] == ("blocker", 0)
    # Under saturation: every high run before any low one, each in due order.
    assert order[1:5] == [("high", k) for k in range(4)], order
    assert order[5] == ("low", 0), order
    lows = [k for tid, k in order if tid == "low"]
    assert lows == list(range(16)), order  # due order within a priority; none starved
    # The second wave overtook the low runs still waiting when it came (one
    # may have been on its way to the worker already).
    assert waiting_lows >= 6, waiting_lows
    last_high2 = max(i for i, (tid, _) in enumerate(order) if tid == "high2")
    lows_after = sum(1 for tid, _ in order[last_high2:] if tid == "low")
    assert lows_after >= waiting_lows - 2, (order, waiting_lows)
    assert [k for tid, k in order if tid == "high2"] == [0, 1, 2], order


# -- the admin ----------------------------------------------------------------------


def _admin_login(cluster: Cluster, client: httpx.Client) -> None:
    subprocess.run(
        [
            sys.executable,
            MANAGE,
            "createsuperuser",
            "--noinput",
            "--username",
            "ops",
            "--email",
            "ops@example.com",
        ],
        env={**cluster.env, "DJANGO_SUPERUSER_PASSWORD": ADMIN_PASSWORD},
        cwd=PROJECT_ROOT,
        check=True,
        capture_output=True,
    )
    page = client.get("/admin/login/?next=/admin/")
    assert page.status_code == 200, page.text
    response = client.post(
        "/admin/login/?next=/admin/",
        data={
            "username": "ops",
            "password": ADMIN_PASSWORD,
            "next": "/admin/",
            "csrfmiddlewaretoken": _csrf(page.text),
        },
    )
    assert response.status_code == 302 and response.headers["Location"] == "/admin/", (
        response.status_code,
        response.text[:2000],
    )


def _csrf(html: str) -> str:
    match = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', html)
    assert match, html[:2000]
    return match[1]


def _admin_action(client: httpx.Client, action: str, schedule_pk: int) -> str:
    """Post `action` on the schedule changelist for one schedule; the page
    it leads to (with the admin's message)."""
    changelist = "/admin/tasks_app/schedule/"
    page = client.get(changelist)
    assert page.status_code == 200, page.text[:2000]
    assert action in page.text  # offered in the actions menu
    response = client.post(
        changelist,
        data={
            "action": action,
            "_selected_action": str(schedule_pk),
            "select_across": "0",
            "index": "0",
            "csrfmiddlewaretoken": _csrf(page.text),
        },
        follow_redirects=True,
    )
    assert response.status_code == 200, response.text[:2000]
    return response.text


def test_pause_trigger_and_resume_from_the_admin(shared: Shared, schedules: list[str]) -> None:
    cluster = shared.cluster
    name = "from-admin"
    _schedule(cluster, schedules, name=name, module=shared.noop, every=0.5, input=2, difficulty=3)
    with db(cluster) as conn:
        (pk,) = conn.execute("SELECT id FROM tasks_app_schedule WHERE name = ?", (name,)).fetchone()

    def succeeded() -> list[Firing]:
        return [f for f in _firings(cluster, name) if f.state == "succeeded"]

    cluster.wait_for(lambda: len(succeeded()) >= 2, 30, "two firings before the pause")
    with cluster.netns.entered(), httpx.Client(base_url=f"http://{HTTP}", timeout=30) as client:
        _admin_login(cluster, client)

        page = _admin_action(client, "pause", pk)
        paused_at = datetime.now(UTC)
        assert "1 schedules paused." in page
        detail = cluster.request("GET", f"/schedules/{name}").json()
        assert detail["paused"] is True and detail["next_fire_times"] == [], detail
        # The head made before the pause is skipped when due; nothing after it.
        cluster.wait_for(
            lambda: all(f.state not in ("pending", "running") for f in _firings(cluster, name)),
            10,
            "the firing made before the pause to be decided",
        )
        before = _firings(cluster, name)
        time.sleep(2)  # four fire times pass
        after = _firings(cluster, name)
        assert after == before, (before, after)  # nothing fired while paused
        late = [f for f in after if f.fire_at > paused_at + SECOND]
        assert late == [], late
        # (A firing sent to its worker before the pause may have run.)
        head = [f for f in after if f.fire_at > paused_at + timedelta(seconds=0.1)]
        assert len(head) <= 1 and all(
            f.state == "cancelled" and f.error == "skipped: the schedule is paused" for f in head
        ), head

        page = _admin_action(client, "trigger", pk)
        fired = re.search(rf"Fired: ({re.escape(name)}@[0-9T:.\-]+Z)", page)
        assert fired, page[:3000]
        triggered = fired[1]
        cluster.wait_for(
            lambda: any(f.task_id == triggered and f.state == "succeeded" for f in succeeded()),
            30,
            "the triggered firing to run",
        )
        assert _fire_time(triggered) > paused_at
        assert cluster.request("GET", f"/schedules/{name}").json()["paused"] is True

        page = _admin_action(client, "resume", pk)
        resumed_at = datetime.now(UTC)
        assert "1 schedules resumed." in page
    detail = cluster.request("GET", f"/schedules/{name}").json()
    assert detail["paused"] is False and len(detail["next_fire_times"]) == 5, detail
    cluster.wait_for(
        lambda: len([f for f in succeeded() if f.fire_at > resumed_at]) >= 2,
        30,
        "firings after the resume",
    )
