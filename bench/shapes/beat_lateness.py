"""One 1 s interval schedule over 60 s, ours and Celery beat's
(django-celery-beat's DatabaseScheduler, an IntervalSchedule of 1 s) side by
side in the same minute (issue 18): the lateness of each firing's start on a
worker after its fire time.

Ours: `POST /schedules {"every": 1, "start_at": A}` (A a whole second a few
seconds ahead); every fire time is in its firing's task id
(`<name>@<fire time>`), the start is the run's `started_at` on the worker.
Fire times A, A+1, ..., A+59 are expected; a missing one has no firing that
started.

Beat: its PeriodicTask's `last_run_at` is seeded to A-1 s, so beat's first
fire time is A. Beat then counts each interval from the moment it sent the
previous firing (celery.schedules.schedule: last_run_at + run_every, and
last_run_at is set when sent), so it has no fixed grid of its own: the k-th
firing is measured against the ideal grid A + k s anchored at that first fire
time, which is what "every second" promises. Its drift (how far the last
firing fell behind the first on that grid) and the gaps between consecutive
starts are reported too. A fire time of A..A+59 counts missing when fewer
than 60 firings started by the end (A+60 s plus a 2 s grace)."""

from __future__ import annotations

import itertools
import math
import time
from typing import Any

from bench import schedule_side
from bench.beat_side import BeatBaseline
from bench.measures import lateness_stats, pct
from bench.ours import OurSystem
from bench.procs import Procs
from bench.progress import log

GRACE = 2.0  # s after the window's end before the firings are read


def _gaps(starts: list[float]) -> dict[str, Any]:
    """Consecutive starts' spacing less the interval, ms."""
    gaps = [(b - a - 1.0) * 1000 for a, b in itertools.pairwise(starts)]
    return {"p50_ms": pct(gaps, 50), "p99_ms": pct(gaps, 99), "max_ms": max(gaps, default=None)}


def ours_figures(us: OurSystem, name: str, anchor: float, seconds: int) -> dict[str, Any]:
    fs = {round(f["fire"], 3): f for f in schedule_side.firings(us, name + "@")}
    lates, starts, missing = [], [], 0
    for k in range(seconds):
        f = fs.get(round(anchor + k, 3))
        if f is None or f["started"] is None:
            missing += 1
            continue
        starts.append(f["started"])
        lates.append((f["started"] - f["fire"]) * 1000)
    out = lateness_stats(lates)
    out.update(
        expected=seconds,
        missing=missing,
        drift_ms=(lates[-1] - lates[0]) if lates else None,
        gaps=_gaps(starts),
        states={s: sum(1 for f in fs.values() if f["state"] == s) for s in _states(fs.values())},
    )
    return out


def _states(fs: Any) -> set[str]:
    return {f["state"] for f in fs}


def beat_figures(beat: BeatBaseline, name: str, anchor: float, seconds: int) -> dict[str, Any]:
    starts = sorted(t for n, t in beat.starts() if n == name)
    late_starts = starts[:seconds]
    lates = [(t - (anchor + k)) * 1000 for k, t in enumerate(late_starts)]
    out = lateness_stats(lates)
    out.update(
        expected=seconds,
        missing=max(0, seconds - len(late_starts)),
        drift_ms=(lates[-1] - lates[0]) if lates else None,
        gaps=_gaps(late_starts),
        firings_seen=len(starts),
    )
    return out


def measure(procs: Procs, wasm: bytes, seconds: int = 60) -> dict[str, Any]:
    """Both schedules in the same minute (a firing a second each: neither
    loads the machine for the other); our gateway + 2 workers, beat + a
    prefork worker -c 2."""
    us = OurSystem(procs, label="beat-lateness")
    beat = BeatBaseline(procs, label="beat-lateness")
    try:
        us.start_gateway()
        us.start_worker()
        us.start_worker()
        us.warm_up(wasm)
        beat.start_worker()
        sha = schedule_side.upload(us, wasm)
        anchor = float(math.ceil(time.time()) + 6)
        body = {
            "name": "tick",
            "module": sha,
            "every": 1,
            "start_at": schedule_side.iso(anchor),
            "input": 1,
            "difficulty": 2,
        }
        made = schedule_side.create(us, [body], clients=1)
        if made["errors"]:
            raise RuntimeError(f"POST /schedules: {made['first_errors']}")
        beat.seed(wasm, prefix="tick", count=1, every=1, first=anchor, spread=0)
        beat.start_beat()
        log(f"beat_lateness: a 1 s schedule each, {seconds} fire times from {anchor:.0f}")
        time.sleep(max(0.0, anchor + seconds + GRACE - time.time()))
        return {
            "seconds": seconds,
            "anchor": anchor,
            "ours": ours_figures(us, "tick", anchor, seconds),
            "beat": beat_figures(beat, "tick-0", anchor, seconds),
            "beat_rss_mb": beat.beat_rss_mb() if beat.beat_alive() else None,
            "gateway_rss_mb": us.gateway_rss_mb(),
        }
    finally:
        beat.stop()
        us.stop()
