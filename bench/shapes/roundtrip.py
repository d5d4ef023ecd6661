"""Round trip: one run due now, from just before its submission to its
final state in the client. Ours two ways (polling `GET /tasks/<id>`, and the
run's final state on the `/ws/tasks/` stream), Celery's
`apply_async(...).get()`, Dramatiq's `send` then `get_result(block=True)`
(each configuration); they take turns in rounds."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from bench.celery_side import CeleryBaseline
from bench.clients import FINAL, RunEvents, run_timings
from bench.dramatiq_side import DramatiqBaseline
from bench.measures import merge_rounds, pct
from bench.ours import OurSystem
from bench.progress import log


def ours_polling(sys_: OurSystem, wasm: bytes, n: int, poll: float = 0.001) -> dict[str, Any]:
    """POST one run due now; poll GET /tasks/<id> until it is final."""
    totals: list[float] = []
    post_ms: list[float] = []
    parts: dict[str, list[float]] = {
        "receipt_to_sent": [],
        "sent_to_started": [],
        "exec": [],
        "finished_to_visible": [],
    }
    polls: list[int] = []
    errors = 0
    client = sys_.lean_client()
    for _ in range(n):
        task_id = sys_.new_id("rt")
        t0 = time.time()
        client.submit(wasm, task_id=task_id)
        t1 = time.time()
        body = None
        k = 0
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            k += 1
            body = client.detail(task_id)
            if body["runs"][0]["state"] in FINAL:
                break
            time.sleep(poll)
        t2 = time.time()
        if body is None or body["runs"][0]["state"] != "succeeded":
            errors += 1
            continue
        totals.append((t2 - t0) * 1000)
        post_ms.append((t1 - t0) * 1000)
        polls.append(k)
        r = run_timings(body)[0]
        if None not in (r["due"], r["sent"], r["started"], r["finished"]):
            parts["receipt_to_sent"].append((r["sent"] - r["due"]) * 1000)
            parts["sent_to_started"].append((r["started"] - r["sent"]) * 1000)
            parts["exec"].append((r["finished"] - r["started"]) * 1000)
            parts["finished_to_visible"].append((t2 - r["finished"]) * 1000)
    client.close()
    return {
        "p50_ms": pct(totals, 50),
        "p99_ms": pct(totals, 99),
        "n": len(totals),
        "errors": errors,
        "samples_ms": totals,
        "post_p50_ms": pct(post_ms, 50),
        "polls_p50": pct(polls, 50),
        "breakdown_p50_ms": {k: pct(v, 50) for k, v in parts.items()},
        "method": "REST POST /tasks (repeats=1, start=0), then GET /tasks/<id> every 1 ms "
        "until the run is final; one keep-alive http.client connection",
    }


def ours_websocket(sys_: OurSystem, wasm: bytes, n: int) -> dict[str, Any]:
    """POST one run due now; wait for its final state on the websocket
    stream /ws/tasks/ (connected once, before the first POST)."""
    totals = []
    errors = 0
    client = sys_.lean_client()
    with RunEvents(sys_.http_port, "/ws/tasks/") as ws:
        for _ in range(n):
            task_id = sys_.new_id("rtws")
            t0 = time.time()
            client.submit(wasm, task_id=task_id)
            deadline = time.monotonic() + 30
            ok = False
            while time.monotonic() < deadline:
                msg = ws.recv_json(timeout=max(0.01, deadline - time.monotonic()))
                if msg.get("task") == task_id and msg.get("state") in FINAL:
                    ok = msg.get("state") == "succeeded"
                    break
            if not ok:
                errors += 1
                continue
            totals.append((time.time() - t0) * 1000)
    client.close()
    return {
        "p50_ms": pct(totals, 50),
        "p99_ms": pct(totals, 99),
        "n": len(totals),
        "errors": errors,
        "samples_ms": totals,
        "method": "REST POST /tasks (one keep-alive http.client connection), then the run's "
        "final state on ws://.../ws/tasks/ (frames read on the client's thread)",
    }


def celery(c: CeleryBaseline, wasm: bytes, n: int) -> dict[str, Any]:
    args = c.args(wasm, 1, 2)
    totals = []
    for _ in range(n):
        t0 = time.time()
        c.task.apply_async(args).get(timeout=30)
        totals.append((time.time() - t0) * 1000)
    return {
        "p50_ms": pct(totals, 50),
        "p99_ms": pct(totals, 99),
        "n": n,
        "samples_ms": totals,
        "method": "apply_async(...).get()",
    }


def dramatiq(d: DramatiqBaseline, wasm: bytes, n: int) -> dict[str, Any]:
    totals = []
    for _ in range(n):
        t0 = time.time()
        d.call(wasm, 1, 2, timeout=30)
        totals.append((time.time() - t0) * 1000)
    return {
        "p50_ms": pct(totals, 50),
        "p99_ms": pct(totals, 99),
        "n": n,
        "samples_ms": totals,
        "method": "send(...) then message.get_result(block=True)",
    }


def compare(
    us: OurSystem,
    cel: CeleryBaseline,
    dqs: Sequence[DramatiqBaseline],
    wasm: bytes,
    n: int,
    chunk: int,
) -> dict[str, Any]:
    """`n` round trips each, in rounds of `chunk` per client taking turns,
    so that a slow spell of this shared machine falls on all of them alike;
    percentiles over every sample."""
    log(f"round trip: {n} each, in turns of {chunk}")
    parts: dict[str, list[dict[str, Any]]] = {"ours": [], "ours_websocket": [], "celery": []}
    for _ in range(n // chunk):
        parts["ours"].append(ours_polling(us, wasm, chunk))
        try:
            parts["ours_websocket"].append(ours_websocket(us, wasm, chunk))
        except Exception as exc:  # noqa: BLE001 - reported, the rest goes on
            parts["ours_websocket"].append({"error": f"{type(exc).__name__}: {exc}"})
        parts["celery"].append(celery(cel, wasm, chunk))
        for d in dqs:
            parts.setdefault(d.name, []).append(dramatiq(d, wasm, chunk))
    return {name: merge_rounds(rs) for name, rs in parts.items()}
