"""Wasm overhead: the hash puzzle end to end on ours, Celery and Dramatiq, against
the same C built natively (process start included) and a bare in-process
wasmtime call."""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bench import modules
from bench.celery_side import CeleryBaseline
from bench.clients import run_timings
from bench.dramatiq_side import DramatiqBaseline
from bench.measures import med
from bench.ours import OurSystem
from bench.progress import log


def ours(sys_: OurSystem, wasm: bytes, difficulty: int) -> dict[str, Any]:
    """POST -> the run's final state on the task's websocket stream."""
    task_id = sys_.new_id("hash")
    with sys_.watch(task_id) as watch:
        t0 = time.time()
        sys_.submit(wasm, task_id=task_id, input=0, difficulty=difficulty)
        done, _ = watch.wait_final(1, timeout=120)
    body = sys_.detail(task_id)
    r = run_timings(body)[0]
    return {
        "seconds": (done - t0) if done else None,
        "exec_seconds": (r["finished"] - r["started"]) if r["finished"] else None,
        "result": body["runs"][0]["result"],
        "state": body["runs"][0]["state"],
    }


def celery(c: CeleryBaseline, wasm: bytes, difficulty: int) -> dict[str, Any]:
    t0 = time.time()
    out = c.task.apply_async(c.args(wasm, 0, difficulty)).get(timeout=120)
    return {
        "seconds": time.time() - t0,
        "exec_seconds": out["finished"] - out["started"],
        "result": out["result"],
    }


def dramatiq(d: DramatiqBaseline, wasm: bytes, difficulty: int) -> dict[str, Any]:
    t0 = time.time()
    out = d.call(wasm, 0, difficulty, timeout=120)
    return {
        "seconds": time.time() - t0,
        "exec_seconds": out["finished"] - out["started"],
        "result": out["result"],
    }


def compare(
    us: OurSystem,
    cel: CeleryBaseline,
    dqs: Sequence[DramatiqBaseline],
    wasm: bytes,
    work: Path,
    difficulty: int,
    reps: int,
) -> dict[str, Any]:
    """Native, ours, Celery and each Dramatiq configuration in turn, `reps`
    times; medians."""
    exe = modules.build_native_hash(work)
    native, ours_r, cel_r = [], [], []
    dq_r: dict[str, list[dict[str, Any]]] = {d.name: [] for d in dqs}
    answer = ""
    for rep in range(reps):
        log(f"hash puzzle difficulty {difficulty}, rep {rep + 1}/{reps}")
        t, answer = modules.time_native_hash(exe, 0, difficulty)
        native.append(t)
        ours_r.append(ours(us, wasm, difficulty))
        cel_r.append(celery(cel, wasm, difficulty))
        for d in dqs:
            dq_r[d.name].append(dramatiq(d, wasm, difficulty))
    in_process = modules.time_run(wasm, 0, difficulty, repeat=1)
    peers = [r for rs in dq_r.values() for r in rs]
    return {
        **{f"{name}_s": med([r["seconds"] for r in rs]) for name, rs in dq_r.items()},
        **{f"{name}_exec_s": med([r["exec_seconds"] for r in rs]) for name, rs in dq_r.items()},
        "difficulty": difficulty,
        "native_answer": answer,
        "native_s": med(native),
        "ours_s": med([r["seconds"] for r in ours_r]),
        "ours_exec_s": med([r["exec_seconds"] for r in ours_r]),
        "celery_s": med([r["seconds"] for r in cel_r]),
        "celery_exec_s": med([r["exec_seconds"] for r in cel_r]),
        "wasmtime_in_process_s": in_process,
        "answers_agree": all(r["result"] == answer for r in ours_r + cel_r + peers),
        "reps": {"ours": ours_r, "celery": cel_r, "native": native, **dq_r},
        "how": "native: gcc -O2 of examples/hash/hash.c, wall time of the process; "
        "ours: POST -> final state on /ws/tasks/<id>/; celery: apply_async -> get; "
        "dramatiq: send -> get_result(block=True)",
    }
