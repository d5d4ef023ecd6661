"""The scheduler restarted with 10,000 schedules (issue 18): how long after
the new process starts firings resume, ours and Celery beat's. Runs on the
systems bench/shapes/beat_many.py set up (10,000 schedules every 60 s,
spread over the minute, firing for a while already).

Ours: SIGKILL the gateway, at once start a new one on the same state
(identity, SQLite) and ports; the two workers redial by themselves (their
backoff, workers/backoff.py). t0 = the new process's start. Resumed = the
first firing started on a worker by an attempt the new gateway sent
(`sent_at` > t0; the old gateway's last sends are never recorded); also the
first firing started within 10 ms of a fire time after t0 (fire times kept
again), when each worker rejoined, the fire times missed while down (kept by
the catch-up: `catchup_window` 60 s by default) and the lateness of the
firings after resuming.

Beat: SIGKILL beat, wait until its worker has started nothing for 0.5 s
(the firings beat sent before dying are behind us), start a new beat.
t0 = the new process's start; resumed = the first firing started on the
worker after t0. Also: the firings started in the 10 s after t0 against
the fire times in them (beat's rows keep the `last_run_at` it last wrote,
every 3 minutes by default, so after a SIGKILL it sends again what it had
sent since), and the schedules that fired twice less than half an interval
apart."""

from __future__ import annotations

import itertools
import time
from collections import defaultdict
from typing import Any

from bench import schedule_side
from bench.beat_project import STARTS_KEY
from bench.beat_side import BeatBaseline
from bench.measures import lateness_stats
from bench.ours import OurSystem

OBSERVE = 15.0  # s after t0 before the firings are read
ON_TIME_MS = 10.0
QUIET = 0.5  # s without a start on beat's worker before beat is started again


def _rejoined(us: OurSystem, marks: list[int], until: float) -> list[float | None]:
    """When each worker printed that it joined again (polled every 10 ms)."""
    seen: list[float | None] = [None] * len(us.workers)
    while time.time() < until and None in seen:
        for i, (proc, _) in enumerate(us.workers):
            if seen[i] is None and any(" joined " in s for s in proc.lines[marks[i] :]):
                seen[i] = time.time()
        time.sleep(0.01)
    return seen


def ours(us: OurSystem, prefix: str, n: int, every: float) -> dict[str, Any]:
    marks = [len(proc.lines) for proc, _ in us.workers]
    killed = schedule_side.kill_gateway(us)
    times = schedule_side.restart_gateway(us)
    t0 = times["started"]
    rejoined = _rejoined(us, marks, t0 + OBSERVE)
    time.sleep(max(0.0, t0 + OBSERVE - time.time()))
    fs = schedule_side.firings(us, prefix)
    new = sorted(
        (f for f in fs if f["sent"] and f["sent"] > t0 and f["started"]),
        key=lambda f: f["started"],
    )
    first = new[0] if new else None
    on_time = next(
        (f for f in new if f["fire"] >= t0 and (f["started"] - f["fire"]) * 1000 <= ON_TIME_MS),
        None,
    )
    down = [f for f in fs if killed <= f["fire"] < (first["started"] if first else t0)]
    after = [
        (f["started"] - f["fire"]) * 1000
        for f in fs
        if first and f["started"] and first["started"] <= f["fire"] < t0 + OBSERVE - 2
    ]
    per_time: dict[float, int] = defaultdict(int)
    for f in fs:
        per_time[f["fire"]] += 1
    return {
        "killed_at": killed,
        "restarted_at": t0,
        "peer_id_printed_s": times["peer_id_printed"] - t0,
        "http_printed_s": times["http_printed"] - t0,
        "workers_rejoined_s": [None if r is None else r - t0 for r in rejoined],
        "resume_s": None if first is None else first["started"] - t0,
        "first_resumed_firing_late_ms": None
        if first is None
        else (first["started"] - first["fire"]) * 1000,
        "first_on_time_s": None if on_time is None else on_time["started"] - t0,
        "fire_times_while_down": len(down),
        "of_them_started": sum(1 for f in down if f["started"]),
        "late_ms_of_those_max": max(
            ((f["started"] - f["fire"]) * 1000 for f in down if f["started"]), default=None
        ),
        "lateness_after_resume": lateness_stats(after),
        "fire_times_with_two_firings": sum(1 for c in per_time.values() if c > 1),
    }


def beat(b: BeatBaseline, n: int, every: float) -> dict[str, Any]:
    killed = b.kill_beat()
    count = b.redis().llen(STARTS_KEY)
    quiet_since = time.time()
    while time.time() - quiet_since < QUIET and time.time() - killed < 30:
        time.sleep(0.05)
        now_count = b.redis().llen(STARTS_KEY)
        if now_count != count:
            count, quiet_since = now_count, time.time()
    b.start_beat()
    t0 = b.beat_started_at
    time.sleep(max(0.0, t0 + OBSERVE - time.time()))
    starts = b.starts()
    new = sorted(t for _, t in starts if t > t0)
    by_name: dict[str, list[float]] = defaultdict(list)
    for name, t in starts:
        by_name[name].append(t)
    twice = 0
    for ts in by_name.values():
        ts.sort()
        twice += any(b2 - a < every / 2 for a, b2 in itertools.pairwise(ts))
    first_10s = sum(1 for t in new if t <= t0 + 10)
    return {
        "killed_at": killed,
        "restarted_at": t0,
        "quiet_wait_s": t0 - killed,
        "resume_s": (new[0] - t0) if new else None,
        "started_in_first_10s": first_10s,
        "fire_times_in_first_10s": round(n * 10 / every),
        "schedules_fired_twice_within_half_an_interval": twice,
        "beat_alive": b.beat_alive(),
        "beat_log_tail": b.beat_log_tail()[-600:] if not b.beat_alive() else "",
    }
