"""Throughput: N no-op runs, from the first submission to the last result
stored. Ours in two shapes, as a user would submit them (one task of N runs;
N one-run tasks from 8 concurrent connections), Celery's N apply_async then
get() of each, Dramatiq's N send then get_result of each (each of its
configurations); CPU per run of every process involved."""

from __future__ import annotations

import concurrent.futures
import time
from collections.abc import Callable, Sequence
from typing import Any

import httpx

from bench.celery_side import CeleryBaseline
from bench.dramatiq_side import DramatiqBaseline
from bench.measures import cpu_medians, med
from bench.ours import OurSystem
from bench.progress import log


def ours_one_task(sys_: OurSystem, wasm: bytes, n: int) -> dict[str, Any]:
    before = sys_.db.max_iteration_id()
    cpu0 = sys_.cpu()
    t0 = time.time()
    sys_.submit(wasm, task_id=sys_.new_id("tput1"), repeats=n)
    t_posted = time.time()
    done, states = sys_.db.wait_final(before, n, timeout=max(120, n / 20))
    if done is None:
        return {"error": f"not done in time: {states}", "states": states}
    return {
        "runs_per_s": n / (done - t0),
        "seconds": done - t0,
        "post_seconds": t_posted - t0,
        "states": states,
        **_cpu_per_run(sys_, cpu0, n),
    }


def ours_separate_tasks(
    sys_: OurSystem, wasm: bytes, n: int, concurrency: int = 8
) -> dict[str, Any]:
    before = sys_.db.max_iteration_id()
    ids = [sys_.new_id("tputn") for _ in range(n)]
    errors: list[str] = []
    clients = [
        httpx.Client(base_url=str(sys_.http.base_url), timeout=60) for _ in range(concurrency)
    ]

    def post(i: int) -> None:
        try:
            sys_.submit(wasm, task_id=ids[i], client=clients[i % concurrency])
        except Exception as exc:  # noqa: BLE001 - counted and reported
            errors.append(str(exc)[:200])

    cpu0 = sys_.cpu()
    t0 = time.time()
    with concurrent.futures.ThreadPoolExecutor(concurrency) as pool:
        list(pool.map(post, range(n)))
    t_posted = time.time()
    for c in clients:
        c.close()
    done, states = sys_.db.wait_final(before, n - len(errors), timeout=max(120, n / 10))
    if done is None:
        return {
            "error": f"not done in time: {states}",
            "states": states,
            "post_errors": errors[:5],
            "post_error_count": len(errors),
        }
    return {
        "runs_per_s": n / (done - t0),
        "seconds": done - t0,
        "post_seconds": t_posted - t0,
        "posts_per_s": n / (t_posted - t0),
        "states": states,
        "post_error_count": len(errors),
        "post_errors": errors[:5],
        **_cpu_per_run(sys_, cpu0, n),
    }


def celery(c: CeleryBaseline, wasm: bytes, n: int) -> dict[str, Any]:
    args = c.args(wasm, 1, 2)
    cpu0, rcpu0 = c.cpu(), c.redis_cpu()
    t0 = time.time()
    rs = [c.task.apply_async(args) for _ in range(n)]
    t_posted = time.time()
    failed = 0
    for r in rs:
        try:
            r.get(timeout=300)
        except Exception:  # noqa: BLE001
            failed += 1
    done = time.time()
    cpu = {
        "worker_cpu_ms_per_run": (c.cpu() - cpu0) * 1000 / n,
        "redis_cpu_ms_per_run": (c.redis_cpu() - rcpu0) * 1000 / n,
    }
    for r in rs:
        r.forget()
    return {
        "runs_per_s": n / (done - t0),
        "seconds": done - t0,
        "post_seconds": t_posted - t0,
        "failed": failed,
        **cpu,
    }


def dramatiq(d: DramatiqBaseline, wasm: bytes, n: int) -> dict[str, Any]:
    cpu0, rcpu0 = d.cpu(), d.redis_cpu()
    t0 = time.time()
    messages = [d.send(wasm) for _ in range(n)]
    t_posted = time.time()
    failed = 0
    for m in messages:
        try:
            d.result(m, timeout=300)
        except Exception:  # noqa: BLE001 - counted and reported
            failed += 1
    done = time.time()
    return {
        "runs_per_s": n / (done - t0),
        "seconds": done - t0,
        "post_seconds": t_posted - t0,
        "failed": failed,
        "worker_cpu_ms_per_run": (d.cpu() - cpu0) * 1000 / n,
        "redis_cpu_ms_per_run": (d.redis_cpu() - rcpu0) * 1000 / n,
    }


def peers_in_turn(
    cel: CeleryBaseline,
    dqs: Sequence[DramatiqBaseline],
    n: int,
    celery_fn: Callable[[CeleryBaseline, bytes, int], dict[str, Any]],
    dramatiq_fn: Callable[[DramatiqBaseline, bytes, int], dict[str, Any]],
    wasm: bytes,
    runs: dict[str, list[dict[str, Any]]],
    what: str,
) -> None:
    """One repetition of every peer (Celery, then each Dramatiq
    configuration), appended to `runs` under its results key."""
    log(f"{what}: celery")
    runs.setdefault("celery", []).append(_with_client_cpu(n, celery_fn, cel, wasm, n))
    for d in dqs:
        log(f"{what}: {d.name}")
        runs.setdefault(d.name, []).append(_with_client_cpu(n, dramatiq_fn, d, wasm, n))


def compare(
    us: OurSystem,
    cel: CeleryBaseline,
    dqs: Sequence[DramatiqBaseline],
    wasm: bytes,
    n: int,
    reps: int,
) -> dict[str, Any]:
    """`reps` repetitions, the shapes in turn; medians."""
    one, sep = [], []
    peer_runs: dict[str, list[dict[str, Any]]] = {}
    for rep in range(reps):
        log(f"throughput rep {rep + 1}/{reps}: ours, 1 task x {n} runs")
        one.append(_with_client_cpu(n, ours_one_task, us, wasm, n))
        peers_in_turn(cel, dqs, n, celery, dramatiq, wasm, peer_runs, f"throughput rep {rep + 1}")
        log(f"throughput rep {rep + 1}: ours, {n} one-run tasks (8 concurrent POSTs)")
        sep.append(_with_client_cpu(n, ours_separate_tasks, us, wasm, n))
    cel_runs = peer_runs["celery"]
    dq = {name: rs for name, rs in peer_runs.items() if name != "celery"}
    return {
        "runs": n,
        "ours_one_task": {"runs_per_s": med([r.get("runs_per_s") for r in one]), "reps": one},
        "ours_separate_tasks": {
            "runs_per_s": med([r.get("runs_per_s") for r in sep]),
            "reps": sep,
        },
        "celery": {
            "runs_per_s": med([r.get("runs_per_s") for r in cel_runs]),
            "reps": cel_runs,
        },
        "cpu_ms_per_run_median": {
            "ours_one_task": cpu_medians(one, ("gateway", "workers")),
            "ours_separate_tasks": cpu_medians(sep, ("gateway", "workers")),
            "celery": cpu_medians(cel_runs, ("worker", "redis")),
            **{name: cpu_medians(rs, ("worker", "redis")) for name, rs in dq.items()},
        },
        **{
            name: {"runs_per_s": med([r.get("runs_per_s") for r in rs]), "reps": rs}
            for name, rs in dq.items()
        },
        "how": "ours: one POST /tasks with repeats=N, delay=0 (one_task) or N POSTs "
        "with repeats=1 (separate); from the first POST to the DB poll (5 ms) "
        "that sees every run final. celery: N apply_async then get() each. "
        "dramatiq: N send then get_result(block=True) each.",
    }


def _cpu_per_run(sys_: OurSystem, cpu0: dict[str, float], n: int) -> dict[str, float]:
    cpu1 = sys_.cpu()
    return {f"{k}_cpu_ms_per_run": (cpu1[k] - cpu0[k]) * 1000 / n for k in cpu1}


def _with_client_cpu(n: int, fn: Callable[..., dict[str, Any]], *args: Any) -> dict[str, Any]:
    """The measure's result, with the bench process's own CPU per run."""
    c0 = time.process_time()
    out = fn(*args)
    out["client_cpu_ms_per_run"] = (time.process_time() - c0) * 1000 / n
    return out
