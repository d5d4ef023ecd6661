"""Round trip by waiting (issue 17.8): one run due now, from just before
its submission to its result in the client. Ours: a JSON `POST /tasks`
naming the uploaded module by hash, then one `GET /tasks/<id>?wait=10`
(answered when the run is final), both on one keep-alive connection.
Celery: `apply_async(...).get()`; Dramatiq: `send` then
`get_result(block=True)`. They take turns in rounds; p50/p99 over all."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from bench.celery_side import CeleryBaseline
from bench.clients import run_timings
from bench.dramatiq_side import DramatiqBaseline
from bench.json_api import JsonClient, Unavailable, not_available, task_body
from bench.measures import merge_rounds, pct
from bench.ours import OurSystem
from bench.progress import log
from bench.shapes import roundtrip

WAIT_S = 10


def ours(sys_: OurSystem, sha: str, n: int) -> dict[str, Any]:
    totals: list[float] = []
    post_ms: list[float] = []
    parts: dict[str, list[float]] = {
        "receipt_to_sent": [],
        "sent_to_started": [],
        "exec": [],
        "finished_to_answer": [],
    }
    errors = 0
    client = JsonClient(sys_.http_port)
    try:
        for _ in range(n):
            t0 = time.time()
            task = client.submit_json(task_body(sha))
            t1 = time.time()
            body = client.wait(str(task["id"]), WAIT_S)
            t2 = time.time()
            if body["runs"][0]["state"] != "succeeded":
                errors += 1
                continue
            totals.append((t2 - t0) * 1000)
            post_ms.append((t1 - t0) * 1000)
            r = run_timings(body)[0]
            if None not in (r["due"], r["sent"], r["started"], r["finished"]):
                parts["receipt_to_sent"].append((r["sent"] - r["due"]) * 1000)
                parts["sent_to_started"].append((r["started"] - r["sent"]) * 1000)
                parts["exec"].append((r["finished"] - r["started"]) * 1000)
                parts["finished_to_answer"].append((t2 - r["finished"]) * 1000)
    finally:
        client.close()
    return {
        "p50_ms": pct(totals, 50),
        "p99_ms": pct(totals, 99),
        "n": len(totals),
        "errors": errors,
        "samples_ms": totals,
        "post_p50_ms": pct(post_ms, 50),
        "breakdown_p50_ms": {k: pct(v, 50) for k, v in parts.items()},
        "method": f"JSON POST /tasks {{module: sha256}}, then GET /tasks/<id>?wait={WAIT_S}; "
        "one keep-alive http.client connection",
    }


def compare(
    us: OurSystem,
    cel: CeleryBaseline,
    dqs: Sequence[DramatiqBaseline],
    wasm: bytes,
    n: int,
    chunk: int,
) -> dict[str, Any]:
    log(f"round trip by ?wait: {n} each, in turns of {chunk}")
    parts: dict[str, list[dict[str, Any]]] = {"ours": [], "celery": []}
    unavailable: dict[str, Any] | None = None
    sha = ""
    client = JsonClient(us.http_port)
    try:
        sha = client.upload(wasm)
    except Unavailable as exc:
        unavailable = not_available(exc)
    finally:
        client.close()
    for _ in range(n // chunk):
        if unavailable is None:
            try:
                parts["ours"].append(ours(us, sha, chunk))
            except Unavailable as exc:
                unavailable = not_available(exc)
        parts["celery"].append(roundtrip.celery(cel, wasm, chunk))
        for d in dqs:
            parts.setdefault(d.name, []).append(roundtrip.dramatiq(d, wasm, chunk))
    out = {name: merge_rounds(rs) for name, rs in parts.items() if rs}
    if unavailable is not None:
        out["ours"] = {**unavailable, "p50_ms": None, "p99_ms": None}
    return out
