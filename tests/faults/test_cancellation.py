"""DELETE /tasks/<id>: runs not started end `cancelled` at once, a running
run is interrupted on its worker, the task stays inspectable, and the worker
keeps serving."""

from __future__ import annotations

from collections.abc import Callable

from tests.e2e.cluster import Cluster
from tests.faults.harness import (
    BUSY_WAT,
    NOOP_WAT,
    Ledger,
    assert_nothing_lost,
    busy_iterations,
    submit,
    task,
    wait_finished,
    wait_running,
)


def test_cancel_pending_and_running_runs(
    make_cluster: Callable[..., Cluster], ledger: Ledger
) -> None:
    cluster = make_cluster(workers=1)
    submit(cluster, NOOP_WAT, id="future", start="30", repeats="3", delay="1")
    submit(
        cluster, BUSY_WAT, id="spin", start="0", repeats="2", delay="0", input=busy_iterations(30)
    )
    wait_running(cluster, "spin")

    response = cluster.request("DELETE", "/tasks/future")
    assert response.status_code == 200
    assert response.json()["runs_by_state"]["cancelled"] == 3  # the summary, not the runs

    assert cluster.request("DELETE", "/tasks/spin").status_code == 200
    # Interrupted: it would otherwise spin for 30 s.
    body = wait_finished(cluster, "spin", timeout=15)
    states = sorted(run["state"] for run in body["runs"])
    assert states == ["cancelled", "cancelled"]
    # The running one was interrupted; the other either never left the
    # gateway or waited in the worker's queue and was dropped there.
    attempts = [a for r in body["runs"] for a in r["attempts"]]
    assert attempts and all(a["outcome"] == "cancelled" for a in attempts)
    assert body["state"] == "cancelled" and body["cancelled_at"]

    # Still inspectable, cancelling again is harmless, unknown ids are 404.
    assert task(cluster, "spin")["completions"] == 0
    assert cluster.request("DELETE", "/tasks/spin").status_code == 200
    assert cluster.request("DELETE", "/tasks/nope").status_code == 404

    # The worker's slot is free again.
    submit(cluster, NOOP_WAT, id="after", start="0", repeats="1")
    assert wait_finished(cluster, "after")["completions"] == 1
    ledger.record(faults=0, counts=assert_nothing_lost(cluster))
