"""Worker faults with real processes: SIGKILL mid-run, attempts capped,
deterministic failures, graceful SIGTERM. Every test checks the final
states and counts in the database and through the REST API."""

from __future__ import annotations

import signal
import time
from collections.abc import Callable

from django.utils.dateparse import parse_datetime

from tests.e2e.cluster import Cluster
from tests.faults.harness import (
    BUSY_WAT,
    NOOP_WAT,
    TRAP_WAT,
    Ledger,
    assert_nothing_lost,
    busy_iterations,
    db,
    kill,
    submit,
    wait_finished,
    wait_running,
)


def _worker_pid(cluster: Cluster, peer_id: str) -> int:
    for proc, worker_id in cluster.workers:
        if worker_id == peer_id:
            return proc.pid
    raise KeyError(peer_id)


def test_sigkilled_worker_loses_its_attempt_and_the_run_is_redispatched(
    make_cluster: Callable[..., Cluster], ledger: Ledger
) -> None:
    cluster = make_cluster(workers=2)
    submit(cluster, BUSY_WAT, id="long", start="0", repeats="1", input=busy_iterations(2.5))
    running = wait_running(cluster, "long")
    victim = running["runs"][0]["worker"]
    killed_at = time.time()
    kill(_worker_pid(cluster, victim))

    body = wait_finished(cluster, "long")
    (run,) = body["runs"]
    assert run["state"] == "succeeded"
    first, second = run["attempts"]
    assert (first["outcome"], first["worker"]) == ("lost", victim)
    assert second["outcome"] == "succeeded" and second["worker"] != victim
    redispatch = parse_datetime(second["sent_at"]).timestamp() - killed_at
    assert redispatch < 3, f"re-dispatched {redispatch:.2f} s after the kill"
    assert body["completions"] == 1
    ledger.record(faults=1, counts=assert_nothing_lost(cluster))


def test_attempts_are_capped_and_the_run_fails_with_the_reason(
    make_cluster: Callable[..., Cluster], ledger: Ledger
) -> None:
    cluster = make_cluster(workers=1, WW_MAX_ATTEMPTS="1")
    submit(cluster, BUSY_WAT, id="doomed", start="0", repeats="1", input=busy_iterations(5))
    wait_running(cluster, "doomed")
    kill(cluster.workers[0][0].pid)

    body = wait_finished(cluster, "doomed")
    (run,) = body["runs"]
    assert run["state"] == "failed"
    assert "gave up after 1 attempts" in run["error"]
    assert [a["outcome"] for a in run["attempts"]] == ["lost"]
    ledger.record(faults=1, counts=assert_nothing_lost(cluster))


def test_deterministic_failures_are_retried_only_when_the_task_asks(
    make_cluster: Callable[..., Cluster], ledger: Ledger
) -> None:
    cluster = make_cluster(workers=2)
    submit(cluster, TRAP_WAT, id="once", start="0", repeats="1")
    submit(cluster, TRAP_WAT, id="thrice", start="0", repeats="1", retries="2")

    once = wait_finished(cluster, "once")["runs"][0]
    assert once["state"] == "failed"
    assert [a["outcome"] for a in once["attempts"]] == ["failed"]
    thrice = wait_finished(cluster, "thrice")["runs"][0]
    assert thrice["state"] == "failed"
    assert [a["outcome"] for a in thrice["attempts"]] == ["failed"] * 3
    assert all("unreachable" in a["error"] for a in thrice["attempts"])
    ledger.record(faults=0, counts=assert_nothing_lost(cluster))


def test_sigterm_finishes_runs_in_flight_and_takes_no_new_ones(
    make_cluster: Callable[..., Cluster], ledger: Ledger
) -> None:
    cluster = make_cluster(workers=2)
    submit(cluster, BUSY_WAT, id="inflight", start="0", repeats="1", input=busy_iterations(2))
    running = wait_running(cluster, "inflight")
    leaving = running["runs"][0]["worker"]
    (proc,) = [p for p, peer in cluster.workers if peer == leaving]
    kill(proc.pid, signal.SIGTERM)
    # Runs due while it drains, and after its run ends, go to the other worker.
    submit(cluster, NOOP_WAT, id="after", start="0", repeats="6", delay="0.5")

    inflight = wait_finished(cluster, "inflight")["runs"][0]
    assert inflight["state"] == "succeeded"
    assert [(a["outcome"], a["worker"]) for a in inflight["attempts"]] == [("succeeded", leaving)]
    after = wait_finished(cluster, "after")
    assert after["completions"] == 6
    assert all(run["worker"] != leaving for run in after["runs"])
    assert proc.popen.wait(timeout=20) == 0  # it left cleanly
    with db(cluster) as conn:
        failed = conn.execute(
            "SELECT failed, connected FROM cluster_app_workernode WHERE peer_id = ?", (leaving,)
        ).fetchone()
    assert failed == (0, 0)  # a graceful stop is not a failure
    ledger.record(faults=1, counts=assert_nothing_lost(cluster))
