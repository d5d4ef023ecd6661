"""tasks_app/fire_times.py: fire times (every, cron with and without
seconds, IANA zones across both DST transitions), firing ids, jitter,
catch-up and overlap, with hypothesis properties: fire times strictly
increase, no two firings share a fire time or an id, jitter stays within
its bounds and before the next fire time."""

from __future__ import annotations

import os
import shutil
import subprocess
import zoneinfo
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tasks_app import fire_times
from tasks_app.fire_times import Overlap, Timing, Verdict

NEW_YORK = fire_times.zone_of("America/New_York")
T0 = datetime(2026, 1, 1, tzinfo=UTC)


def local(at: datetime) -> str:
    return at.astimezone(NEW_YORK).strftime("%Y-%m-%d %H:%M:%S%z")


def test_every_counts_from_its_anchor() -> None:
    timing = Timing(every=1.5, anchor=T0)
    assert fire_times.fire_times(timing, T0 - timedelta(hours=1), 3) == [
        T0,
        T0 + timedelta(seconds=1.5),
        T0 + timedelta(seconds=3),
    ]
    assert fire_times.next_fire(timing, T0 + timedelta(seconds=1.5)) == T0 + timedelta(seconds=3)


def test_start_and_end_bound_the_fire_times() -> None:
    timing = Timing(
        cron="0 * * * *",
        start_at=T0 + timedelta(minutes=30),
        end_at=T0 + timedelta(hours=3),
    )
    times = fire_times.fire_times(timing, T0 - timedelta(days=1), 10)
    assert times == [T0 + timedelta(hours=h) for h in (1, 2, 3)]


def test_six_fields_have_seconds_first() -> None:
    timing = Timing(cron="*/20 * * * * *")
    assert fire_times.fire_times(timing, T0, 3) == [
        T0 + timedelta(seconds=20),
        T0 + timedelta(seconds=40),
        T0 + timedelta(seconds=60),
    ]


def test_a_wall_time_the_clock_skips_fires_once_after_the_gap() -> None:
    # 2026-03-08, New York: 02:00 EST -> 03:00 EDT; 02:30 does not exist.
    for expr in ("30 2 * * *", "0 30 2 * * *"):
        timing = Timing(cron=expr, zone="America/New_York")
        times = fire_times.fire_times(timing, datetime(2026, 3, 6, 12, tzinfo=UTC), 4)
        assert [local(t) for t in times] == [
            "2026-03-07 02:30:00-0500",
            "2026-03-08 03:00:00-0400",  # documented: the first minute after the gap
            "2026-03-09 02:30:00-0400",
            "2026-03-10 02:30:00-0400",
        ]


def test_a_wall_time_the_clock_shows_twice_fires_once() -> None:
    # 2026-11-01, New York: 02:00 EDT -> 01:00 EST; 01:30 happens twice.
    for expr in ("30 1 * * *", "0 30 1 * * *"):
        timing = Timing(cron=expr, zone="America/New_York")
        times = fire_times.fire_times(timing, datetime(2026, 10, 31, 12, tzinfo=UTC), 3)
        assert [local(t) for t in times] == [
            "2026-11-01 01:30:00-0400",  # its first occurrence only
            "2026-11-02 01:30:00-0500",
            "2026-11-03 01:30:00-0500",
        ]


def test_a_repetition_follows_real_time_across_dst() -> None:
    timing = Timing(cron="0 * * * *", zone="America/New_York")
    back = fire_times.fire_times(timing, datetime(2026, 11, 1, 4, 30, tzinfo=UTC), 3)
    assert [t - back[0] for t in back] == [timedelta(hours=h) for h in (0, 1, 2)]
    forward = fire_times.fire_times(timing, datetime(2026, 3, 8, 5, 30, tzinfo=UTC), 3)
    assert [t - forward[0] for t in forward] == [timedelta(hours=h) for h in (0, 1, 2)]


@pytest.fixture
def private_zones(tmp_path: Path) -> Iterator[str]:
    """Zones built with zic whose offsets change by odd seconds, at
    2026-03-08 02:00:00 UTC: `<prefix>Spring` jumps +0:00:10 -> +0:00:30
    (the clock skips 02:00:10..02:00:29), `<prefix>Fall` goes back
    +0:00:30 -> +0:00:10 (it shows 02:00:10..02:00:29 twice)."""
    zic = shutil.which("zic") or "/usr/sbin/zic"
    if not Path(zic).exists():
        pytest.skip("zic (tzdata's zone compiler) is not installed")
    prefix = f"Test{os.getpid()}/"
    source = tmp_path / "zones.txt"
    source.write_text(
        f"Zone {prefix}Spring 0:00:10 - TST 2026 Mar 8 2:00:00u\n"
        "\t0:00:30 - TDT\n"
        f"Zone {prefix}Fall 0:00:30 - TDT 2026 Mar 8 2:00:00u\n"
        "\t0:00:10 - TST\n"
    )
    subprocess.run([zic, "-d", str(tmp_path / "db"), str(source)], check=True)
    zoneinfo.reset_tzpath(to=[str(tmp_path / "db")])
    try:
        yield prefix
    finally:
        zoneinfo.reset_tzpath()
        zoneinfo.ZoneInfo.clear_cache()


def test_a_skipped_wall_time_fires_when_the_clock_jumps_not_at_the_next_minute(
    private_zones: str,
) -> None:
    timing = Timing(cron="20 0 2 * * *", zone=f"{private_zones}Spring")
    times = fire_times.fire_times(timing, datetime(2026, 3, 7, 12, tzinfo=UTC), 2)
    assert times == [
        datetime(2026, 3, 8, 2, 0, 0, tzinfo=UTC),  # the jump: the clock reads 02:00:30
        datetime(2026, 3, 9, 1, 59, 50, tzinfo=UTC),  # 02:00:20 at +0:00:30
    ]


def test_a_wall_time_shown_twice_by_odd_seconds_fires_at_its_first_occurrence(
    private_zones: str,
) -> None:
    timing = Timing(cron="20 0 2 * * *", zone=f"{private_zones}Fall")
    times = fire_times.fire_times(timing, datetime(2026, 3, 7, 12, tzinfo=UTC), 2)
    assert times == [
        datetime(2026, 3, 8, 1, 59, 50, tzinfo=UTC),  # 02:00:20 at +0:00:30, before the change
        datetime(2026, 3, 9, 2, 0, 10, tzinfo=UTC),  # at +0:00:10; not 02:00:10 on the 8th
    ]


@pytest.mark.parametrize("expr", ["* * *", "61 * * * *", "* * * * * * *", "0 0 30 2 *"])
def test_bad_cron_expressions_are_refused(expr: str) -> None:
    with pytest.raises(fire_times.InvalidTiming):
        fire_times.check_cron(expr)


def test_unknown_zones_are_refused() -> None:
    with pytest.raises(fire_times.InvalidTiming):
        fire_times.zone_of("Mars/Olympus")


def test_firing_ids_carry_the_fire_time_and_read_back() -> None:
    at = datetime(2026, 12, 3, 14, 0, 1, tzinfo=UTC)
    assert fire_times.firing_id("backup", at) == "backup@2026-12-03T14:00:01Z"
    half = at + timedelta(microseconds=500_000)
    assert fire_times.firing_id("b", half) == "b@2026-12-03T14:00:01.500000Z"
    assert fire_times.parse_firing_id("b@2026-12-03T14:00:01.500000Z") == ("b", half)
    assert fire_times.parse_firing_id("not-a-firing") is None
    assert fire_times.parse_firing_id("a@b@2026-12-03T14:00:01Z") is None


def test_catch_up_runs_young_fire_times_and_skips_old_ones() -> None:
    timing = Timing(every=10, anchor=T0)
    plan = fire_times.catch_up(timing, head=T0, now=T0 + timedelta(seconds=95), window=30)
    assert plan.run == [T0 + timedelta(seconds=s) for s in (70, 80, 90)]
    assert plan.skipped == 7 and plan.skipped_exact
    assert plan.first_skipped == T0 and plan.last_skipped == T0 + timedelta(seconds=60)
    assert plan.head == T0 + timedelta(seconds=100)
    none = fire_times.catch_up(timing, head=T0, now=T0 + timedelta(seconds=95), window=0)
    assert none.run == [] and none.skipped == 10
    capped = fire_times.catch_up(timing, head=T0, now=T0 + timedelta(seconds=95), window=30, room=2)
    assert capped.run == [T0 + timedelta(seconds=70), T0 + timedelta(seconds=80)]
    assert capped.head is None


def test_catch_up_counts_a_long_gap_without_walking_it_all() -> None:
    timing = Timing(cron="* * * * * *")
    now = T0 + timedelta(days=30)
    plan = fire_times.catch_up(timing, head=T0, now=now, window=5, limit=1000)
    assert plan.skipped == 1000 and not plan.skipped_exact
    assert len(plan.run) == 6 and plan.run[-1] == now


@pytest.mark.parametrize(
    ("policy", "running", "waiting", "catching_up", "verdict"),
    [
        (Overlap.SKIP, False, 0, False, Verdict.RUN),
        (Overlap.SKIP, True, 0, False, Verdict.SKIP),
        (Overlap.BUFFER_ONE, True, 0, False, Verdict.WAIT),
        (Overlap.BUFFER_ONE, True, 1, False, Verdict.SKIP),
        (Overlap.ALLOW, True, 5, False, Verdict.RUN),
        (Overlap.SKIP, True, 3, True, Verdict.WAIT),
        (Overlap.ALLOW, True, 0, True, Verdict.RUN),
    ],
)
def test_overlap(
    policy: Overlap, running: bool, waiting: int, catching_up: bool, verdict: Verdict
) -> None:
    assert (
        fire_times.overlap_verdict(
            policy, previous_running=running, waiting=waiting, catching_up=catching_up
        )
        == verdict
    )


# -- properties -------------------------------------------------------------------

ZONES = ["UTC", "America/New_York", "Europe/Paris", "Australia/Lord_Howe", "Asia/Kolkata"]
CRONS = [
    "30 2 * * *",
    "30 1 * * *",
    "0 30 2 * * *",
    "*/7 * * * *",
    "15 */2 * * *",
    "0 0 * * 1",
    "*/13 * * * * *",
    "0 0,30 1-3 * * *",
]
instants = st.datetimes(
    min_value=datetime(2000, 1, 1), max_value=datetime(2040, 1, 1), timezones=st.just(UTC)
)


@settings(max_examples=150, deadline=None)
@given(expr=st.sampled_from(CRONS), zone=st.sampled_from(ZONES), after=instants)
def test_cron_fire_times_strictly_increase(expr: str, zone: str, after: datetime) -> None:
    times = fire_times.fire_times(Timing(cron=expr, zone=zone), after, 12)
    assert len(times) == 12
    assert all(a < b for a, b in zip([after, *times], times, strict=False))
    ids = [fire_times.firing_id("s", t) for t in times]
    assert len(set(ids)) == len(ids)


@settings(max_examples=150, deadline=None)
@given(
    every=st.floats(min_value=0.001, max_value=86400 * 7),
    offset=st.floats(min_value=-1e6, max_value=1e8),
)
def test_every_fire_times_strictly_increase(every: float, offset: float) -> None:
    timing = Timing(every=every, anchor=T0)
    after = T0 + timedelta(seconds=offset)
    times = fire_times.fire_times(timing, after, 10)
    assert all(a < b for a, b in zip([after, *times], times, strict=False))
    assert times[0] >= T0
    assert len({fire_times.firing_id("s", t) for t in times}) == 10


@settings(max_examples=200, deadline=None)
@given(
    every=st.floats(min_value=0.01, max_value=3600),
    jitter=st.floats(min_value=0, max_value=7200),
    k=st.integers(min_value=0, max_value=10_000),
)
def test_jitter_stays_within_its_bounds_and_before_the_next_fire(
    every: float, jitter: float, k: int
) -> None:
    timing = Timing(every=every, anchor=T0)
    at = fire_times.fire_times(timing, T0 - timedelta(seconds=1), k + 1)[-1]
    following = fire_times.next_fire(timing, at)
    assert following is not None
    task_id = fire_times.firing_id("j", at)
    due = fire_times.due_at(timing, task_id, at, jitter=jitter)
    assert at <= due <= at + timedelta(seconds=jitter)
    assert due < following or due == at
    assert due == fire_times.due_at(timing, task_id, at, jitter=jitter)  # the same everywhere


WALL_CRONS = ["30 2 * * *", "0 30 2 * * *", "30 1 * * *", "15 45 0 * * *"]


@settings(max_examples=150, deadline=None)
@given(expr=st.sampled_from(WALL_CRONS), zone=st.sampled_from(ZONES[1:]), after=instants)
def test_a_fixed_time_of_day_fires_at_it_or_at_the_jump_that_skipped_it(
    expr: str, zone: str, after: datetime
) -> None:
    tz = fire_times.zone_of(zone)
    fields = expr.split()
    second, minute, hour = (
        (fields[0], fields[1], fields[2]) if len(fields) == 6 else ("0", *fields[:2])
    )
    for at in fire_times.fire_times(Timing(cron=expr, zone=zone), after, 6):
        reading = at.astimezone(tz)
        wall = (reading.hour, reading.minute, reading.second)
        jumped = (at - fire_times.MICROSECOND).astimezone(tz).utcoffset() != reading.utcoffset()
        assert wall == (int(hour), int(minute), int(second)) or jumped, (expr, zone, at)


@settings(max_examples=200, deadline=None)
@given(
    every=st.floats(min_value=0.5, max_value=3600),
    missed=st.integers(min_value=0, max_value=300),
    part=st.floats(min_value=0, max_value=0.999),
    window=st.floats(min_value=0, max_value=7200),
)
def test_catch_up_decides_each_missed_fire_time_once(
    every: float, missed: int, part: float, window: float
) -> None:
    """Every fire time from the head up to now is either run (once, in order,
    inside the window) or counted skipped (older); none both, none lost, and
    the new head is the first fire time after now."""
    timing = Timing(every=every, anchor=T0)
    now = T0 + timedelta(seconds=(missed + part) * every)
    plan = fire_times.catch_up(timing, head=T0, now=now, window=window)
    times = [T0, *fire_times.fire_times(timing, T0, missed + 2)]
    missed_times = [t for t in times if t <= now]
    cutoff = now - timedelta(seconds=window)
    assert plan.run == [t for t in missed_times if t >= cutoff]
    assert plan.skipped_exact and plan.skipped == len(missed_times) - len(plan.run)
    if plan.skipped:
        assert plan.first_skipped == missed_times[0]
        assert plan.last_skipped == missed_times[plan.skipped - 1]
    assert plan.head == fire_times.next_fire(timing, now)
    assert len({fire_times.firing_id("s", t) for t in plan.run}) == len(plan.run)


@given(
    policy=st.sampled_from(list(Overlap)),
    running=st.booleans(),
    waiting=st.integers(min_value=0, max_value=5),
    catching_up=st.booleans(),
)
def test_overlap_verdicts_never_run_two_under_skip_nor_hold_two_under_buffer_one(
    policy: Overlap, running: bool, waiting: int, catching_up: bool
) -> None:
    verdict = fire_times.overlap_verdict(
        policy, previous_running=running, waiting=waiting, catching_up=catching_up
    )
    if not running or policy is Overlap.ALLOW:
        assert verdict is Verdict.RUN  # nothing to overlap with, or overlap allowed
    elif catching_up:
        assert verdict is Verdict.WAIT  # a missed fire time is never dropped for overlap
    elif policy is Overlap.SKIP:
        assert verdict is Verdict.SKIP
    else:
        assert verdict is (Verdict.WAIT if waiting == 0 else Verdict.SKIP)
