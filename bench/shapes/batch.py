"""A batch (issue 17.8): 10,000 one-run no-op tasks in one request, end to
end, runs/s. Ours: the module uploaded once, then one `POST /tasks/batch`
of 10,000 JSON tasks naming it by hash; the end is the first 5 ms poll of
the gateway's database (read-only) that sees every run final. Celery: a
`group` of 10,000 signatures, `apply_async()` then `get()` of the group;
Dramatiq: a `group` of 10,000 messages, `run()` then `get_result(block=True)`
of each message."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from bench.celery_side import CeleryBaseline
from bench.dramatiq_side import DramatiqBaseline
from bench.json_api import JsonClient, Unavailable, not_available, task_body
from bench.ours import OurSystem
from bench.progress import log
from bench.shapes.one_run_tasks import guarded, summary


def ours(sys_: OurSystem, wasm: bytes, n: int) -> dict[str, Any]:
    client = JsonClient(sys_.http_port)
    try:
        try:
            sha = client.upload(wasm)
        except Unavailable as exc:
            return not_available(exc)
        tasks = [task_body(sha) for _ in range(n)]
        before = sys_.db.max_iteration_id()
        t0 = time.time()
        try:
            ids = client.submit_batch(tasks)
        except Unavailable as exc:
            return not_available(exc)
        t_posted = time.time()
    finally:
        client.close()
    done, states = sys_.db.wait_final(before, n, timeout=max(120, n / 20))
    out: dict[str, Any] = {"ids": len(ids), "post_seconds": t_posted - t0, "states": states}
    if done is None:
        return {**out, "error": f"not done in time: {states}"}
    return {**out, "runs_per_s": n / (done - t0), "seconds": done - t0}


def celery(c: CeleryBaseline, wasm: bytes, n: int) -> dict[str, Any]:
    args = c.args(wasm, 1, 2)
    t0 = time.time()
    result = c.mod.group(c.task.s(*args) for _ in range(n)).apply_async()
    t_posted = time.time()
    outs = result.get(timeout=600, propagate=False)
    done = time.time()
    failed = sum(1 for o in outs if not isinstance(o, dict))
    result.forget()
    return {
        "runs_per_s": n / (done - t0),
        "seconds": done - t0,
        "post_seconds": t_posted - t0,
        "failed": failed,
    }


def dramatiq(d: DramatiqBaseline, wasm: bytes, n: int) -> dict[str, Any]:
    messages = [d.message(wasm) for _ in range(n)]
    t0 = time.time()
    d.group(messages)
    t_posted = time.time()
    failed = 0
    for m in messages:
        try:
            d.result(m, timeout=600)
        except Exception:  # noqa: BLE001 - counted and reported
            failed += 1
    done = time.time()
    return {
        "runs_per_s": n / (done - t0),
        "seconds": done - t0,
        "post_seconds": t_posted - t0,
        "failed": failed,
    }


def compare(
    us: OurSystem,
    cel: CeleryBaseline,
    dqs: Sequence[DramatiqBaseline],
    wasm: bytes,
    n: int,
    reps: int,
) -> dict[str, Any]:
    """`reps` repetitions, ours and each peer in turn; medians."""
    runs: dict[str, list[dict[str, Any]]] = {"ours": [], "celery": []}
    for rep in range(reps):
        log(f"batch rep {rep + 1}/{reps}: ours, one POST /tasks/batch of {n}")
        runs["ours"].append(guarded(ours, us, wasm, n))
        log(f"batch rep {rep + 1}: celery, a group of {n}")
        runs["celery"].append(celery(cel, wasm, n))
        for d in dqs:
            log(f"batch rep {rep + 1}: {d.name}, a group of {n}")
            runs.setdefault(d.name, []).append(dramatiq(d, wasm, n))
    return {
        "runs": n,
        **{name: summary(rs) for name, rs in runs.items()},
        "how": "ours: POST /modules once, one POST /tasks/batch of N JSON tasks by hash; "
        "end: the 5 ms read-only poll of the gateway's database that sees every run final. "
        "celery: group(N signatures).apply_async().get(); dramatiq: group(N messages).run(), "
        "then get_result(block=True) of each.",
    }
