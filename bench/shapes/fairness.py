"""Fairness over many workers: `connections` worker connections from one
process (bench/many_workers.py: each its own `Worker` capability and peer
ID, concurrency 1), then one task of no-op runs; max/min runs per worker
over the workers in the pool, and the gateway's RSS after."""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path
from typing import Any

from bench.ours import ROOT, OurSystem
from bench.procs import Procs

MANY_WORKERS = Path(__file__).resolve().parents[1] / "many_workers.py"


def fairness(
    sys_: OurSystem, wasm: bytes, connections: int, runs: int, procs: Procs
) -> dict[str, Any]:
    proc = procs.start(
        f"{sys_.label}-many",
        [
            sys.executable,
            str(MANY_WORKERS),
            "--addr",
            f"/ip4/127.0.0.1/tcp/{sys_.rpc_port}",
            "--dial",
            sys_.peer_id,
            "--n",
            str(connections),
        ],
        env=sys_.env,
        cwd=ROOT,
    )
    try:
        proc.wait_line(lambda s: s.startswith("ready"), 120)
        sys_.wait_pool(connections, timeout=60)
        before = sys_.db.max_iteration_id()
        t0 = time.time()
        sys_.submit(wasm, task_id=sys_.new_id("fair"), repeats=runs)
        done, states = sys_.db.wait_final(before, runs, timeout=300)
        counts = sys_.db.attempts_per_worker(before)
        peers = sys_.db.connected_peers()
        per = [counts.get(p, 0) for p in peers]
        rss = sys_.gateway_rss_mb()
        return {
            "connections": connections,
            "workers_in_pool": len(peers),
            "runs": runs,
            "max": max(per) if per else None,
            "min": min(per) if per else None,
            "ratio": (max(per) / min(per)) if per and min(per) > 0 else float("inf"),
            "stdev": statistics.pstdev(per) if per else None,
            "runs_per_s": runs / (done - t0) if done else None,
            "states": states,
            "gateway_rss_mb_after": rss,
        }
    finally:
        procs.stop(proc)
