"""Shared pieces of the fault-injection suite: a module that keeps a worker
busy, reading the truth from the database, the history check every fault
test ends with (tests/faults/history.py), and the ledger of what the suite
injected and what came out (written to var/fault-report.json for the
README's Guarantees section)."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import wasmtime

from tests.e2e.cluster import PROJECT_ROOT, Cluster, seed_form
from tests.faults.history import check, lateness
from tests.faults.history_reads import read_history

# run(n, _) counts to n: about a second per 1.2e9 on this machine.
BUSY_WAT = """
(module (func (export "run") (param $n i64) (param $d i64) (result i64)
  (local $i i64)
  (block $done (loop $l
    (br_if $done (i64.ge_u (local.get $i) (local.get $n)))
    (local.set $i (i64.add (local.get $i) (i64.const 1)))
    (br $l)))
  (local.get $i)))
"""
NOOP_WAT = """
(module (func (export "run") (param i64 i64) (result i64)
  (i64.add (local.get 0) (local.get 1))))
"""
TRAP_WAT = '(module (func (export "run") (param i64 i64) (result i64) unreachable))'
FINAL = {"succeeded", "failed", "timed_out", "cancelled"}
FAST_LIVENESS = {"WW_PING_INTERVAL": "0.5", "WW_PING_TIMEOUT": "1.5"}
# How soon after its due time (or its previous attempt's end and backoff) a
# run is handed out in an unsaturated fault test, on this loaded 2-core
# machine; a test that kills the gateway allows its restart on top.
DISPATCH_BOUND = 5.0  # s
RESTART_ALLOWANCE = 30.0  # s
# How long a cancel may take to reach the worker a run was sent to before
# it: until then that run may start (tests/faults/test_cancel_never_runs.py
# allows the same).
CANCEL_REACH = 1.0  # s


def wasm(wat: str) -> bytes:
    return bytes(wasmtime.wat2wasm(wat))


def busy_iterations(seconds: float) -> str:
    return str(int(seconds * 1.2e9))


def submit(cluster: Cluster, wat: str, **fields: str) -> dict[str, Any]:
    """POST a task; the time limit is generous (busy runs vary with load)."""
    fields.setdefault("duration", "60")
    response = cluster.request(
        "POST", "/tasks", data=seed_form(**fields), files={"wasm": ("m.wasm", wasm(wat))}
    )
    assert response.status_code == 201, response.text
    return response.json()


def task(cluster: Cluster, task_id: str) -> dict[str, Any]:
    response = cluster.request("GET", f"/tasks/{task_id}")
    assert response.status_code == 200, response.text
    return response.json()


def wait_finished(cluster: Cluster, task_id: str, timeout: float = 60) -> dict[str, Any]:
    def finished() -> dict[str, Any] | None:
        body = task(cluster, task_id)
        return body if all(run["state"] in FINAL for run in body["runs"]) else None

    return cluster.wait_for(finished, timeout, f"{task_id} to finish")


def wait_running(cluster: Cluster, task_id: str, count: int = 1, timeout: float = 30) -> dict:
    def running() -> dict[str, Any] | None:
        body = task(cluster, task_id)
        return body if sum(r["state"] == "running" for r in body["runs"]) >= count else None

    return cluster.wait_for(running, timeout, f"{count} runs of {task_id} running")


def kill(pid: int, sig: int = signal.SIGKILL) -> None:
    os.kill(pid, sig)


def db(cluster: Cluster) -> sqlite3.Connection:
    path = cluster.state_dir / "db.sqlite3"
    return sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30)


@dataclass
class Tally:
    runs: int
    unfinished: int  # runs in no final state: lost
    succeeded: int
    double_counted: int  # runs with more than one succeeded attempt
    attempts: int
    max_lateness: float = 0.0  # s from a run's due time to its first hand-out, at worst


def tally(cluster: Cluster) -> Tally:
    with db(cluster) as conn:
        runs, unfinished, succeeded = conn.execute(
            "SELECT COUNT(*),"
            " SUM(state NOT IN ('succeeded','failed','timed_out','cancelled')),"
            " SUM(state = 'succeeded') FROM tasks_app_iteration"
        ).fetchone()
        double = conn.execute(
            "SELECT COUNT(*) FROM (SELECT iteration_id FROM tasks_app_attempt"
            " WHERE outcome = 'succeeded' GROUP BY iteration_id HAVING COUNT(*) > 1)"
        ).fetchone()[0]
        attempts = conn.execute("SELECT COUNT(*) FROM tasks_app_attempt").fetchone()[0]
    return Tally(runs or 0, unfinished or 0, succeeded or 0, double, attempts)


def execution_logs(cluster: Cluster) -> list[Path]:
    """The workers' execution logs: the one the cluster gives them all
    (WW_EXECUTION_LOG) and any other a test gave a worker in its state dir."""
    shared = Path(cluster.env["WW_EXECUTION_LOG"])
    return sorted({shared, *cluster.state_dir.glob("executions*.jsonl")})


def assert_nothing_lost(
    cluster: Cluster,
    *,
    gateway_killed: bool = False,
    dispatch_bound: float | None = DISPATCH_BOUND,
    failover: float | None = None,
    still_going: frozenset[str] = frozenset(),
) -> Tally:
    """The suite's promise, checked on the quiet cluster's history
    (tests/faults/history.py): every run final (but those of `still_going`
    tasks), each success counted once, no run executed twice at once,
    nothing of a cancelled task started later than CANCEL_REACH after the
    cancel, every run handed out within `dispatch_bound` (None: a saturated
    test, not checked; `failover` on top, by default RESTART_ALLOWANCE when
    the gateway was killed), schedules' fire times once each and none
    missing; and the API's completions are the database's."""
    counts = tally(cluster)
    with db(cluster) as conn:
        history = read_history(conn, execution_logs(cluster))
    if failover is None:
        failover = RESTART_ALLOWANCE if gateway_killed else 0.0
    problems = check(
        history,
        gateway_killed=gateway_killed,
        dispatch_bound=dispatch_bound,
        failover=failover,
        still_going=still_going,
        cancel_reach=CANCEL_REACH,
    )
    assert not problems, "\n".join(problems)
    counts.max_lateness = max(lateness(history).values(), default=0.0)
    listing = []
    offset = 0
    while True:
        page = cluster.request("GET", f"/tasks?limit=1000&offset={offset}").json()
        listing.extend(page)
        if len(page) < 1000:
            break
        offset += 1000
    assert {t["id"]: t["completions"] for t in listing} == history.succeeded_count
    return counts


@dataclass
class Ledger:
    faults: int = 0
    runs: int = 0
    completed: int = 0
    lost: int = 0
    double_counted: int = 0
    max_lateness: float = 0.0
    tests: int = 0

    def __post_init__(self) -> None:
        self._lock = threading.Lock()

    def record(self, *, faults: int, counts: Tally) -> None:
        with self._lock:
            self.faults += faults
            self.runs += counts.runs
            self.completed += counts.succeeded
            self.lost += counts.unfinished
            self.double_counted += counts.double_counted
            self.max_lateness = max(self.max_lateness, counts.max_lateness)
            self.tests += 1

    def write(self) -> Path:
        path = PROJECT_ROOT / "var" / "fault-report.json"
        path.parent.mkdir(exist_ok=True)
        report = {
            "date": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()),
            **{k: v for k, v in asdict(self).items() if not k.startswith("_")},
        }
        path.write_text(json.dumps(report, indent=2) + "\n")
        return path
