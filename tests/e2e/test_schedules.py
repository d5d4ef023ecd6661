"""Schedules end to end (a real gateway and worker in a private network
namespace, over REST): a 1 s schedule fires once per second, each firing a
task `<name>@<fire time>` started at its fire time; after a SIGKILL of the
gateway across fire times, catchup_window 60 runs each missed one once and
catchup_window 0 records them skipped, never running one twice; overlap
with runs longer than the interval; pause, resume and trigger."""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.cluster import Cluster, running_cluster
from tests.faults.harness import BUSY_WAT, NOOP_WAT, busy_iterations, db, kill, wasm


@pytest.fixture
def make_cluster(tmp_path: Path) -> Iterator[Callable[..., Cluster]]:
    import contextlib

    with contextlib.ExitStack() as stack:

        def make(**kwargs: Any) -> Cluster:
            return stack.enter_context(running_cluster(tmp_path, **kwargs))

        yield make


def _module(cluster: Cluster, wat: str) -> str:
    response = cluster.request(
        "POST", "/modules", content=wasm(wat), headers={"Content-Type": "application/wasm"}
    )
    assert response.status_code in (200, 201), response.text
    return str(response.json()["sha256"])


def _schedule(cluster: Cluster, **body: Any) -> dict[str, Any]:
    response = cluster.request("POST", "/schedules", json=body)
    assert response.status_code == 201, response.text
    return dict(response.json())


def _firings(cluster: Cluster, name: str) -> list[tuple[str, str, str, int]]:
    """(task id, state, error, successful attempts) of each firing, by fire time."""
    with db(cluster) as conn:
        rows = conn.execute(
            "SELECT t.id, i.state, i.error,"
            " (SELECT COUNT(*) FROM tasks_app_attempt a"
            "   WHERE a.iteration_id = i.id AND a.outcome = 'succeeded')"
            " FROM tasks_app_task t JOIN tasks_app_iteration i ON i.task_id = t.id"
            " JOIN tasks_app_schedule s ON s.id = t.schedule_id"
            " WHERE s.name = ? ORDER BY i.due_at",
            (name,),
        ).fetchall()
    return [(str(a), str(b), str(c), int(d)) for a, b, c, d in rows]


def _fire_time(task_id: str) -> datetime:
    return datetime.fromisoformat(task_id.split("@", 1)[1].replace("Z", "+00:00"))


def _succeeded(cluster: Cluster, name: str, n: int, timeout: float = 60) -> list[str]:
    def enough() -> list[str] | None:
        done = [tid for tid, state, _, _ in _firings(cluster, name) if state == "succeeded"]
        return done if len(done) >= n else None

    found: list[str] = cluster.wait_for(enough, timeout, f"{n} firings of {name} to succeed")
    return found


def test_a_one_second_schedule_fires_each_second_at_its_fire_time(
    make_cluster: Callable[..., Cluster],
) -> None:
    cluster = make_cluster(workers=1)
    module = _module(cluster, NOOP_WAT)
    _schedule(cluster, name="tick", module=module, every=1, input=2, difficulty=3)
    done = _succeeded(cluster, "tick", 4)
    times = [_fire_time(tid) for tid in done]
    assert all(tid.startswith("tick@") and tid.endswith("Z") for tid in done)
    assert all(t.microsecond == 0 for t in times)
    assert [b - a for a, b in itertools.pairwise(times)][:3] == [timedelta(seconds=1)] * 3
    for tid in done[:4]:
        task = cluster.request("GET", f"/tasks/{tid}").json()
        assert task["schedule"] == "tick", task
        run = task["runs"][0]
        assert run["result"] == "5"
        started = datetime.fromisoformat(run["attempts"][0]["started_at"])
        # Sent ahead, started on its fire time (not before; soon after).
        assert _fire_time(tid) <= started < _fire_time(tid) + timedelta(seconds=0.5), run
    assert all(n == 1 for _, _, _, n in _firings(cluster, "tick") if n)


def test_a_gateway_killed_across_fire_times_catches_up_once_or_records_them_skipped(
    make_cluster: Callable[..., Cluster],
) -> None:
    cluster = make_cluster(workers=1)
    module = _module(cluster, NOOP_WAT)
    _schedule(cluster, name="keep", module=module, every=1, catchup_window=60)
    _schedule(cluster, name="drop", module=module, every=1, catchup_window=0)
    _succeeded(cluster, "keep", 2)
    assert cluster.gateway is not None
    kill(cluster.gateway.pid)
    cluster.gateway.popen.wait(timeout=10)
    down_from = datetime.now(UTC)
    time.sleep(4)  # about four fire times pass with no gateway
    down_until = datetime.now(UTC)
    cluster.start_gateway()
    time.sleep(4)
    _succeeded(cluster, "keep", 8)
    keep = [f for f in _firings(cluster, "keep") if f[1] != "pending"]
    times = [_fire_time(tid) for tid, *_ in keep]
    # Every fire time, down time included, is one firing that ran once.
    assert [b - a for a, b in itertools.pairwise(times)] == [timedelta(seconds=1)] * (
        len(times) - 1
    )
    assert len(times) >= 8
    assert all(n <= 1 for *_, n in keep)
    # Every fire time missed while no gateway ran, ran (once: above); they
    # run one after another, so more than the last two can be in flight.
    missed = [f for f in keep if down_from <= _fire_time(f[0]) <= down_until]
    assert len(missed) >= 3, keep
    assert all(state in ("succeeded", "running") and n == 1 for _, state, _, n in missed), missed
    # A regular firing due while those still ran may be skipped, as the
    # schedule's overlap (skip) says, with the reason; nothing failed.
    for _, state, error, _ in keep:
        assert state in ("succeeded", "running") or (
            state == "cancelled" and "previous firing was still running" in error
        ), keep
    assert sum(state == "succeeded" for _, state, _, _ in keep) >= 8, keep

    drop = cluster.request("GET", "/schedules/drop").json()
    assert drop["skipped_count"] >= 2 and drop["missed"], drop
    missed = drop["missed"][0]
    gap_first = datetime.fromisoformat(missed["first_fire_at"])
    gap_last = datetime.fromisoformat(missed["last_fire_at"])
    ran = {_fire_time(tid) for tid, state, _, n in _firings(cluster, "drop") if n}
    assert not any(gap_first <= t <= gap_last for t in ran)  # skipped ones never ran
    assert all(n <= 1 for *_, n in _firings(cluster, "drop"))


def test_overlap_skip_with_runs_longer_than_the_interval(
    make_cluster: Callable[..., Cluster],
) -> None:
    cluster = make_cluster(workers=1, concurrency=4)
    module = _module(cluster, BUSY_WAT)
    _schedule(
        cluster,
        name="long",
        module=module,
        every=1,
        overlap="skip",
        input=int(busy_iterations(2.5)),
        duration=30,
    )

    def some_skipped() -> list[Any] | None:
        firings = _firings(cluster, "long")
        skipped = [f for f in firings if f[1] == "cancelled"]
        ran = [f for f in firings if f[1] == "succeeded"]
        return firings if len(skipped) >= 2 and len(ran) >= 2 else None

    firings = cluster.wait_for(some_skipped, 60, "firings run and skipped")
    assert all("previous firing was still running" in f[2] for f in firings if f[1] == "cancelled")
    with db(cluster) as conn:
        spans = conn.execute(
            "SELECT a.started_at, a.finished_at FROM tasks_app_attempt a"
            " JOIN tasks_app_iteration i ON i.id = a.iteration_id"
            " WHERE i.task_id LIKE 'long@%' AND a.finished_at IS NOT NULL ORDER BY a.started_at"
        ).fetchall()
    assert len(spans) >= 2
    for (_, end), (start, _) in itertools.pairwise(spans):
        assert start >= end  # never two at once


def test_pause_resume_and_trigger_over_rest(make_cluster: Callable[..., Cluster]) -> None:
    cluster = make_cluster(workers=1)
    module = _module(cluster, NOOP_WAT)
    _schedule(cluster, name="p", module=module, every=1)
    _succeeded(cluster, "p", 2)
    paused = cluster.request("PATCH", "/schedules/p", json={"paused": True})
    assert paused.status_code == 200 and paused.json()["next_fire_times"] == []
    time.sleep(1.5)
    before = len([f for f in _firings(cluster, "p") if f[1] == "succeeded"])
    time.sleep(3)
    after = [f for f in _firings(cluster, "p") if f[1] == "succeeded"]
    assert len(after) == before  # nothing fired while paused
    triggered = cluster.request("POST", "/schedules/p/trigger")
    assert triggered.status_code == 201, triggered.text
    tid = triggered.json()["id"]
    cluster.wait_for(
        lambda: cluster.request("GET", f"/tasks/{tid}").json()["state"] == "succeeded",
        30,
        "the triggered firing to run",
    )
    resumed = cluster.request("PATCH", "/schedules/p", json={"paused": False})
    assert resumed.status_code == 200 and len(resumed.json()["next_fire_times"]) == 5
    _succeeded(cluster, "p", before + 3)
