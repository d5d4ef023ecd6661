"""Punctuality: 100 runs due at one instant 1 s ahead (a burst), and 100
due 10 ms apart; lateness = the worker-side start - the due time. Each
shape several times, ours, Celery and each Dramatiq configuration taking
turns (Dramatiq: `delay` in whole milliseconds, lateness after the `eta`
its broker computed from it)."""

from __future__ import annotations

import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from bench.celery_side import CeleryBaseline
from bench.clients import run_timings
from bench.dramatiq_side import DramatiqBaseline
from bench.measures import lateness_medians, lateness_stats
from bench.ours import OurSystem
from bench.progress import log

# (name in the results, seconds between due times)
SHAPES = (("burst", 0.0), ("spaced_10ms", 0.01))


def ours(sys_: OurSystem, wasm: bytes, n: int, spacing: float) -> dict[str, Any]:
    before = sys_.db.max_iteration_id()
    task_id = sys_.new_id("punct")
    sys_.submit(wasm, task_id=task_id, repeats=n, start=1.0, delay=spacing)
    _, states = sys_.db.wait_final(before, n, timeout=60)
    runs = run_timings(sys_.detail(task_id))
    lates = [(r["started"] - r["due"]) * 1000 for r in runs if r["started"] and r["due"]]
    out = lateness_stats(lates)
    out["states"] = states
    return out


def celery(c: CeleryBaseline, wasm: bytes, n: int, spacing: float) -> dict[str, Any]:
    """Lateness of the task's own start (time.time() at its top) after the
    `eta` it was given."""
    args = c.args(wasm, 1, 2)
    first = datetime.now(UTC) + timedelta(seconds=1)
    dues = [first + timedelta(seconds=k * spacing) for k in range(n)]
    rs = [c.task.apply_async(args, eta=due) for due in dues]
    lates = []
    for r, due in zip(rs, dues, strict=True):
        out = r.get(timeout=60)
        lates.append((out["started"] - due.timestamp()) * 1000)
    return lateness_stats(lates)


def dramatiq(d: DramatiqBaseline, wasm: bytes, n: int, spacing: float) -> dict[str, Any]:
    """Lateness of the task's own start after the `eta` (ms since the
    epoch) Dramatiq's broker set from the `delay` it was given."""
    first = time.time() + 1
    messages = []
    for k in range(n):
        delay_ms = max(0, round((first + k * spacing - time.time()) * 1000))
        messages.append(d.send(wasm, delay_ms=delay_ms))
    lates = []
    for m in messages:
        out = d.result(m, timeout=60)
        lates.append((out["started"] - m.options["eta"] / 1000) * 1000)
    return lateness_stats(lates)


def compare(
    us: OurSystem, cel: CeleryBaseline, dqs: Sequence[DramatiqBaseline], wasm: bytes, reps: int
) -> dict[str, Any]:
    """Each shape `reps` times, taking turns: one burst of 100 is at the
    mercy of a slow moment of this shared machine (its p99 is the 99th
    run), so the medians of the repetitions are reported, every
    repetition's numbers kept, and a run started early in any of them
    counts."""
    out: dict[str, Any] = {}
    for name, spacing in SHAPES:
        log(f"punctuality {name}: 100 runs due 1 s ahead, {reps} times")
        runs: dict[str, list[dict[str, Any]]] = {"ours": [], "celery": []}
        for _ in range(reps):
            runs["ours"].append(ours(us, wasm, 100, spacing))
            runs["celery"].append(celery(cel, wasm, 100, spacing))
            for d in dqs:
                runs.setdefault(d.name, []).append(dramatiq(d, wasm, 100, spacing))
        out[name] = {side: lateness_medians(r) for side, r in runs.items()}
    return out
