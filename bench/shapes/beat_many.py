"""10,000 active schedules, each every 60 s, their fire times spread evenly
over the minute (one every 6 ms), ours then Celery beat's (issue 18): the
scheduler process's memory (our gateway's RSS; beat's) and the lateness of
each firing's start on a worker after its fire time, over one minute in
which every schedule fires once.

Ours: 10,000 `POST /schedules {"every": 60, "start_at": base + k*6 ms}`
from 8 client connections (their time is reported), then the minute
[W, W+60) that begins 2 s after the last was made: each schedule has exactly
one fire time in it, exact in its firing's task id; the start is its
attempt's `started_at` on the worker.

Beat: 10,000 PeriodicTasks on a 60 s IntervalSchedule written through the
ORM (bench/beat_project/seed.py; `last_run_at` seeded so that schedule k
first fires at first + k*6 ms), beat started, then two minutes: the first,
the one reported (k=0: beat's first fire time is exactly the seeded one),
and the second (k=1, in the JSON), measured against each schedule's grid
first + k*6 ms + 60 s (beat counts the interval from its own sending of the
first, so its first minute's lateness carries over: drift). A schedule
whose firing had not started by the end of the second minute is missing.
Each system runs alone in
its minute(s) (10,000 firings a minute each would load the other); RSS is
sampled every 0.5 s over the minute measured (max and last)."""

from __future__ import annotations

import math
import threading
import time
from collections import defaultdict
from typing import Any

from bench import schedule_side
from bench.beat_side import BeatBaseline
from bench.measures import lateness_stats
from bench.ours import OurSystem
from bench.procs import Procs, cpu_seconds, rss_mb
from bench.progress import log
from bench.shapes import beat_restart

EVERY = 60
GRACE = 3.0  # s after a window's end before its firings are read
PREFIX = "many-"


class Sampler:
    """RSS of a process every `interval` s on a thread of its own, until
    stopped: the largest and the last."""

    def __init__(self, pid: int, interval: float = 0.5) -> None:
        self.pid = pid
        self.interval = interval
        self.samples: list[float] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.samples.append(rss_mb(self.pid))
            except OSError:
                return
            self._stop.wait(self.interval)

    def stop(self) -> dict[str, Any]:
        self._stop.set()
        self._thread.join(5)
        return {
            "rss_mb_max": max(self.samples, default=None),
            "rss_mb_last": self.samples[-1] if self.samples else None,
            "samples": len(self.samples),
        }


def _wait_until(at: float) -> None:
    time.sleep(max(0.0, at - time.time()))


def ours(
    procs: Procs, wasm: bytes, n: int, *, window: bool, restart: bool
) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
    """(the minute's figures or None, the restart's or None)."""
    us = OurSystem(procs, label="beat-many")
    try:
        us.start_gateway()
        us.start_worker()
        us.start_worker()
        us.warm_up(wasm)
        sha = schedule_side.upload(us, wasm)
        spread = EVERY / n
        base = float(math.ceil(time.time()) + 2)
        bodies = [
            {
                "name": f"{PREFIX}{k:05d}",
                "module": sha,
                "every": EVERY,
                "start_at": schedule_side.iso(base + k * spread),
                "input": 1,
                "difficulty": 2,
            }
            for k in range(n)
        ]
        log(f"beat_many: ours, {n} POST /schedules from 8 clients")
        rss_idle = us.gateway_rss_mb()
        made = schedule_side.create(us, bodies)
        log(f"beat_many: ours, made in {made['seconds']:.1f} s ({made['errors']} refused)")
        many = None
        if window:
            start = float(math.ceil(time.time()) + 2)
            log(f"beat_many: ours, the minute from {start:.0f}")
            _wait_until(start)
            assert us.gateway is not None
            sampler = Sampler(us.gateway.pid)
            cpu0 = cpu_seconds(us.gateway.pid)
            _wait_until(start + EVERY)
            cpu1 = cpu_seconds(us.gateway.pid)
            rss = sampler.stop()
            time.sleep(GRACE)
            many = {
                "schedules": n,
                "creation": made,
                "window_start": start,
                "gateway_rss_mb_before_schedules": rss_idle,
                **{f"gateway_{k}": v for k, v in rss.items()},
                "gateway_cpu_share": (cpu1 - cpu0) / EVERY,
                **ours_minute(us, start, n),
            }
        else:
            time.sleep(10)  # some firings at work before the restart
        back = beat_restart.ours(us, PREFIX, n, EVERY) if restart else None
        return many, back
    finally:
        us.stop()


def ours_minute(us: OurSystem, start: float, n: int) -> dict[str, Any]:
    """Lateness of the firings whose fire times are in [start, start+60)."""
    inside = [f for f in schedule_side.firings(us, PREFIX) if start <= f["fire"] < start + EVERY]
    lates = [(f["started"] - f["fire"]) * 1000 for f in inside if f["started"] is not None]
    out = lateness_stats(lates)
    out.update(
        expected=n,
        missing=n - len(lates),
        firings_in_window=len(inside),
        schedules_in_window=len({f["schedule"] for f in inside}),
    )
    return {"lateness": out}


def beat(
    procs: Procs, wasm: bytes, n: int, *, window: bool, restart: bool
) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
    b = BeatBaseline(procs, label="beat-many")
    try:
        b.start_worker()
        spread = EVERY / n
        first = float(math.ceil(time.time()) + 8)  # beat reads 10,000 rows before it fires
        log(f"beat_many: beat, {n} PeriodicTasks through the ORM")
        seed_s = b.seed(
            wasm, prefix=PREFIX.rstrip("-"), count=n, every=EVERY, first=first, spread=spread
        )
        b.start_beat()
        many = None
        if window:
            log(f"beat_many: beat, two minutes from {first:.0f} (the second one measured)")
            _wait_until(first + EVERY)
            assert b.beat is not None
            sampler = Sampler(b.beat.pid)
            cpu0 = b.beat_cpu()
            _wait_until(first + 2 * EVERY)
            cpu1 = b.beat_cpu()
            rss = sampler.stop()
            time.sleep(GRACE)
            many = {
                "schedules": n,
                "seed_seconds": seed_s,
                "first": first,
                **{f"beat_{k}": v for k, v in rss.items()},
                "beat_cpu_share": (cpu1 - cpu0) / EVERY,
                "beat_alive": b.beat_alive(),
                **beat_minutes(b, first, spread, n),
            }
        else:
            _wait_until(first + 10)
        back = beat_restart.beat(b, n, EVERY) if restart else None
        return many, back
    finally:
        b.stop()


def beat_minutes(b: BeatBaseline, first: float, spread: float, n: int) -> dict[str, Any]:
    """Each schedule's k-th firing against first + i*spread + k*60 (i its
    number): k=0 the first minute (reported: its fire times are exactly
    the seeded ones), k=1 the second (its grid; beat's own fire times
    there are its first sends + 60 s). A firing that never came by the end
    of the second minute (+3 s) is missing."""
    starts: dict[str, list[float]] = defaultdict(list)
    for name, t in b.starts():
        starts[name].append(t)
    minutes: list[list[float]] = [[], []]
    extra = 0
    for i in range(n):
        mine = sorted(starts.get(f"{PREFIX}{i}", []))
        for k, t in enumerate(mine[:2]):
            minutes[k].append((t - (first + i * spread + k * EVERY)) * 1000)
        extra += max(0, len(mine) - 2)
    first_minute = lateness_stats(minutes[0])
    first_minute.update(expected=n, missing=n - len(minutes[0]))
    second_minute = lateness_stats(minutes[1])
    second_minute.update(expected=n, missing=n - len(minutes[1]))
    return {
        "lateness": first_minute,
        "lateness_second_minute": second_minute,
        "firings_beyond_two": extra,
    }


def compare(
    procs: Procs, wasm: bytes, n: int, *, window: bool, restart: bool
) -> dict[str, dict[str, Any]]:
    """{"beat_many": ..., "beat_restart": ...} as asked for; a side that
    fails is recorded (its error in place of its figures) and the other
    still runs."""
    sides = []
    for side in (ours, beat):
        try:
            sides.append(side(procs, wasm, n, window=window, restart=restart))
        except Exception:  # noqa: BLE001 - recorded; the other side still runs
            import traceback

            log(f"beat_many: {side.__name__} FAILED")
            error = {"error": traceback.format_exc()[-3000:]}
            sides.append((error, error))
            procs.stop_all()
    (ours_many, ours_back), (beat_many, beat_back) = sides
    out: dict[str, dict[str, Any]] = {}
    if window:
        out["beat_many"] = {"schedules": n, "ours": ours_many, "beat": beat_many}
    if restart:
        out["beat_restart"] = {"schedules": n, "ours": ours_back, "beat": beat_back}
    return out
