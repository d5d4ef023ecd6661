"""One-run tasks, each its own request (issue 17.8): 2,000 no-op runs
submitted one by one, from the first submission to the last result stored,
runs/s. Ours: the module uploaded once (`POST /modules`), then a JSON
`POST /tasks` naming it by hash per run, from 8 client threads each on its
own keep-alive connection; the end is the first 5 ms poll of the gateway's
database (read-only, bench/gateway_db.py) that sees every run final.
Celery: N `apply_async` then `get()` of each; Dramatiq: N `send` then
`get_result(block=True)` of each (bench/shapes/throughput.py's)."""

from __future__ import annotations

import concurrent.futures
import time
from collections.abc import Callable, Sequence
from typing import Any

from bench.celery_side import CeleryBaseline
from bench.dramatiq_side import DramatiqBaseline
from bench.json_api import JsonClient, Unavailable, not_available, task_body
from bench.measures import cpu_medians, med
from bench.ours import OurSystem
from bench.progress import log
from bench.shapes import throughput

CLIENTS = 8


def ours(sys_: OurSystem, wasm: bytes, n: int, concurrency: int = CLIENTS) -> dict[str, Any]:
    clients = [JsonClient(sys_.http_port) for _ in range(concurrency)]
    try:
        before = sys_.db.max_iteration_id()
        try:
            sha = clients[0].upload(wasm)
            clients[0].submit_json(task_body(sha))  # JSON by hash is served, or Unavailable
        except Unavailable as exc:
            return not_available(exc)
        sys_.db.wait_final(before, 1, timeout=30)
        before = sys_.db.max_iteration_id()
        errors: list[str] = []

        def post_share(k: int) -> None:
            for _ in range(k, n, concurrency):
                try:
                    clients[k].submit_json(task_body(sha))
                except Exception as exc:  # noqa: BLE001 - counted and reported
                    errors.append(str(exc)[:200])

        cpu0 = sys_.cpu()
        t0 = time.time()
        with concurrent.futures.ThreadPoolExecutor(concurrency) as pool:
            list(pool.map(post_share, range(concurrency)))
        t_posted = time.time()
        done, states = sys_.db.wait_final(before, n - len(errors), timeout=max(120, n / 10))
    finally:
        for c in clients:
            c.close()
    out: dict[str, Any] = {
        "states": states,
        "post_seconds": t_posted - t0,
        "posts_per_s": n / (t_posted - t0),
        "post_error_count": len(errors),
        "post_errors": errors[:5],
    }
    if done is None:
        return {**out, "error": f"not done in time: {states}"}
    cpu1 = sys_.cpu()
    return {
        **out,
        "runs_per_s": n / (done - t0),
        "seconds": done - t0,
        **{f"{k}_cpu_ms_per_run": (cpu1[k] - cpu0[k]) * 1000 / n for k in cpu1},
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
    mine: list[dict[str, Any]] = []
    peers: dict[str, list[dict[str, Any]]] = {}
    for rep in range(reps):
        log(f"one-run tasks rep {rep + 1}/{reps}: ours, {n} JSON POSTs by hash ({CLIENTS} clients)")
        mine.append(guarded(ours, us, wasm, n))
        throughput.peers_in_turn(
            cel,
            dqs,
            n,
            throughput.celery,
            throughput.dramatiq,
            wasm,
            peers,
            f"one-run tasks rep {rep + 1}",
        )
    out: dict[str, Any] = {
        "runs": n,
        "ours": summary(mine),
        **{name: summary(rs) for name, rs in peers.items()},
        "cpu_ms_per_run_median": {
            "ours": cpu_medians(mine, ("gateway", "workers")),
            **{name: cpu_medians(rs, ("worker", "redis")) for name, rs in peers.items()},
        },
        "how": f"ours: POST /modules once, then N JSON POST /tasks {{module: sha256}} from "
        f"{CLIENTS} threads on keep-alive connections; end: the 5 ms read-only poll of the "
        "gateway's database that sees every run final. celery: N apply_async then get() "
        "each; dramatiq: N send then get_result(block=True) each.",
    }
    return out


def guarded(fn: Callable[..., dict[str, Any]], *args: Any) -> dict[str, Any]:
    """Our side's result, or the error it raised (the peers are still measured)."""
    try:
        return fn(*args)
    except Exception as exc:  # noqa: BLE001 - reported in the results
        log(f"ours failed: {type(exc).__name__}: {exc}")
        return {"error": f"{type(exc).__name__}: {str(exc)[:500]}"}


def summary(reps: list[dict[str, Any]]) -> dict[str, Any]:
    """The median runs/s of the repetitions; not available if every one said so."""
    out: dict[str, Any] = {"runs_per_s": med([r.get("runs_per_s") for r in reps]), "reps": reps}
    if reps and all(r.get("available") is False for r in reps):
        out.update(available=False, error=reps[0]["error"])
    return out
