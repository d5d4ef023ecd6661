"""After a cancel, no run of the task that had not started is ever executed:
cancelled before its first run was due, between runs, with runs waiting in
a worker's queue, and across a gateway restart. What ran is read from the
database's attempts and from the workers' own logs (each logs every run it
executes at DEBUG), and the queue-depth gauge drops the cancelled runs."""

from __future__ import annotations

import re
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime

from tests.e2e.cluster import MANAGE, PROJECT_ROOT, Cluster
from tests.faults.harness import (
    BUSY_WAT,
    NOOP_WAT,
    assert_nothing_lost,
    busy_iterations,
    db,
    kill,
    submit,
    wait_running,
)

# Every worker's executor logs each run it executed ("ww.executor task ID:
# STATE in ...") at DEBUG.
WORKER_LOGS = {"WW_LOG_LEVEL": "DEBUG"}


def _attempts(cluster: Cluster, task_id: str) -> list[tuple[int, str, str | None]]:
    """(run index, outcome, started_at) of every attempt of the task."""
    with db(cluster) as conn:
        return conn.execute(
            'SELECT i."index", a.outcome, a.started_at FROM tasks_app_attempt a'
            " JOIN tasks_app_iteration i ON i.id = a.iteration_id WHERE i.task_id = ?"
            " ORDER BY a.started_at",
            (task_id,),
        ).fetchall()


def _states(cluster: Cluster, task_id: str) -> list[str]:
    with db(cluster) as conn:
        rows = conn.execute(
            'SELECT state FROM tasks_app_iteration WHERE task_id = ? ORDER BY "index"',
            (task_id,),
        ).fetchall()
    return [state for (state,) in rows]


def _executed_on_workers(cluster: Cluster, task_id: str) -> int:
    """Runs of the task the workers say they executed (their log files)."""
    line = re.compile(rf"ww\.executor task {re.escape(task_id)}: (succeeded|failed|timed_out) in ")
    return sum(
        len(line.findall(path.read_text())) for path in cluster.state_dir.glob("runworker-*.log")
    )


def _queue_depth(cluster: Cluster) -> float:
    text = cluster.request("GET", "/metrics").text
    [value] = re.findall(r"^ww_queue_depth (\S+)$", text, re.MULTILINE)
    return float(value)


def _cancel(cluster: Cluster, task_id: str) -> float:
    response = cluster.request("DELETE", f"/tasks/{task_id}")
    assert response.status_code == 200, response.text
    return time.time()


def test_cancel_before_the_first_run_is_due(make_cluster: Callable[..., Cluster]) -> None:
    cluster = make_cluster(workers=1, **WORKER_LOGS)
    submit(cluster, NOOP_WAT, id="early", start="2", delay="0.2", repeats="5")
    assert _queue_depth(cluster) == 5
    _cancel(cluster, "early")
    assert _queue_depth(cluster) == 0
    time.sleep(4)  # past every due time
    assert _states(cluster, "early") == ["cancelled"] * 5
    assert _attempts(cluster, "early") == []
    assert _executed_on_workers(cluster, "early") == 0
    assert_nothing_lost(cluster)


def test_cancel_between_runs(make_cluster: Callable[..., Cluster]) -> None:
    cluster = make_cluster(workers=1, **WORKER_LOGS)
    submit(cluster, NOOP_WAT, id="between", start="0", delay="3", repeats="3")
    cluster.wait_for(
        lambda: _states(cluster, "between")[0] == "succeeded", 20, "the first run to end"
    )
    _cancel(cluster, "between")
    assert _queue_depth(cluster) == 0
    time.sleep(7)  # past the other two due times
    assert _states(cluster, "between") == ["succeeded", "cancelled", "cancelled"]
    assert [(index, outcome) for index, outcome, _ in _attempts(cluster, "between")] == [
        (0, "succeeded")
    ]
    assert _executed_on_workers(cluster, "between") == 1
    assert_nothing_lost(cluster)


def test_cancel_with_runs_queued_on_a_worker(make_cluster: Callable[..., Cluster]) -> None:
    # Runs of ~5 ms are short: they travel several to a call and wait in the
    # worker's queue behind the one running.
    cluster = make_cluster(workers=1, **WORKER_LOGS)
    submit(
        cluster,
        BUSY_WAT,
        id="queued",
        start="0",
        delay="0",
        repeats="2000",
        input=busy_iterations(0.005),
    )
    cluster.wait_for(
        lambda: _states(cluster, "queued").count("succeeded") >= 50, 30, "50 runs to end"
    )
    cancelled_at = _cancel(cluster, "queued")
    assert _queue_depth(cluster) == 0
    time.sleep(3)
    states = _states(cluster, "queued")
    assert "pending" not in states and "running" not in states, Counter(states)
    done = states.count("succeeded")
    assert states.count("cancelled") == 2000 - done and done < 1500
    # Nothing started once the cancel had reached the worker: those that
    # waited in its queue ended cancelled there without running.
    late = [
        started
        for _, outcome, started in _attempts(cluster, "queued")
        if outcome == "succeeded" and _epoch(started) > cancelled_at + 1.0
    ]
    assert late == []
    assert _executed_on_workers(cluster, "queued") == done
    # 2,000 runs due at once on one slot wait their turn: lateness is the
    # queue's length, not a fault, so it is not bounded here.
    assert_nothing_lost(cluster, dispatch_bound=None)


def test_cancel_survives_a_gateway_restart(make_cluster: Callable[..., Cluster]) -> None:
    cluster = make_cluster(workers=1, **WORKER_LOGS)
    submit(cluster, NOOP_WAT, id="later", start="4", delay="0.5", repeats="3")
    submit(cluster, BUSY_WAT, id="inflight", start="0", repeats="1", input=busy_iterations(30))
    wait_running(cluster, "inflight")
    _cancel(cluster, "later")

    # The gateway dies with `inflight` running; the task is cancelled while
    # it is down (from the command line, straight in the database).
    assert cluster.gateway is not None
    kill(cluster.gateway.pid)
    cluster.gateway.popen.wait(timeout=10)
    subprocess.run(
        [
            sys.executable,
            MANAGE,
            "shell",
            "-c",
            "from tasks_app import services; services.cancel_task(task_id='inflight')",
        ],
        env=cluster.env,
        cwd=PROJECT_ROOT,
        check=True,
        timeout=60,
    )
    cluster.start_gateway()
    cluster.wait_for(
        lambda: sum(" joined " in line for line in cluster.workers[0][0].lines) >= 2,
        30,
        "the worker to rejoin",
    )
    assert _queue_depth(cluster) == 0
    time.sleep(4)  # past `later`'s due times
    assert _states(cluster, "later") == ["cancelled"] * 3
    assert _attempts(cluster, "later") == []
    assert _states(cluster, "inflight") == ["cancelled"]
    assert [outcome for _, outcome, _ in _attempts(cluster, "inflight")] == ["lost"]
    assert _executed_on_workers(cluster, "later") == 0
    assert_nothing_lost(cluster, gateway_killed=True)


def _epoch(stamp: str | None) -> float:
    if stamp is None:
        return 0.0
    moment = datetime.fromisoformat(stamp)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()
