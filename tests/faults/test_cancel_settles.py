"""A cancel of a big task turns a first chunk of its runs `cancelled` and
leaves the rest to the gateway's settler: the gateway converts them all
soon after, and one that was down when the cancel was made (or died
mid-way) resumes from the backlog the database keeps. Nothing of the task
runs meanwhile; every read counts the runs cancelled from the start."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable

from tests.e2e.cluster import MANAGE, PROJECT_ROOT, Cluster
from tests.faults.harness import NOOP_WAT, assert_nothing_lost, db, kill, submit

RUNS = 5000  # more than a cancel converts itself (CANCEL_NOW_RUNS, 1,000)
CANCEL_NOW_RUNS = 1000


def _rows(cluster: Cluster, task_id: str) -> dict[str, int]:
    with db(cluster) as conn:
        return dict(
            conn.execute(
                "SELECT state, COUNT(*) FROM tasks_app_iteration WHERE task_id = ? GROUP BY state",
                (task_id,),
            ).fetchall()
        )


def _backlog(cluster: Cluster) -> list[str]:
    with db(cluster) as conn:
        rows = conn.execute("SELECT task_id FROM tasks_app_pendingcancellation").fetchall()
    return [task_id for (task_id,) in rows]


def _attempts(cluster: Cluster, task_id: str) -> int:
    with db(cluster) as conn:
        [(n,)] = conn.execute(
            "SELECT COUNT(*) FROM tasks_app_attempt a JOIN tasks_app_iteration i"
            " ON i.id = a.iteration_id WHERE i.task_id = ?",
            (task_id,),
        ).fetchall()
    return int(n)


def _settled(cluster: Cluster, task_id: str) -> bool:
    return _rows(cluster, task_id) == {"cancelled": RUNS} and _backlog(cluster) == []


def test_the_gateway_settles_a_big_cancel(make_cluster: Callable[..., Cluster]) -> None:
    cluster = make_cluster(workers=1)
    submit(cluster, NOOP_WAT, id="big", start="2", delay="0.001", repeats=str(RUNS))

    response = cluster.request("DELETE", "/tasks/big")

    assert response.status_code == 200, response.text
    counts = response.json()["runs_by_state"]
    assert counts["cancelled"] == RUNS and counts["pending"] == 0, counts
    cluster.wait_for(lambda: _settled(cluster, "big"), 60, "every run to be turned cancelled")
    assert cluster.request("GET", "/tasks/big").json()["runs_by_state"] == counts
    assert _attempts(cluster, "big") == 0
    assert_nothing_lost(cluster)


def test_a_gateway_started_after_a_cancel_resumes_its_settling(
    make_cluster: Callable[..., Cluster],
) -> None:
    cluster = make_cluster(workers=1)
    submit(cluster, NOOP_WAT, id="big", start="6", delay="0.001", repeats=str(RUNS))
    submit(cluster, NOOP_WAT, id="after", start="14", repeats="1")  # due after every run of big
    assert cluster.gateway is not None
    kill(cluster.gateway.pid)
    cluster.gateway.popen.wait(timeout=10)

    # Cancelled while no gateway runs (what one that died mid-way leaves):
    # the first chunk converted, the rest pending, the task in the backlog.
    subprocess.run(
        [
            sys.executable,
            MANAGE,
            "shell",
            "-c",
            "from tasks_app import services; services.cancel_task(task_id='big')",
        ],
        env=cluster.env,
        cwd=PROJECT_ROOT,
        check=True,
        timeout=60,
    )
    assert _rows(cluster, "big") == {
        "cancelled": CANCEL_NOW_RUNS,
        "pending": RUNS - CANCEL_NOW_RUNS,
    }
    assert _backlog(cluster) == ["big"]

    cluster.start_gateway()
    body = cluster.request("GET", "/tasks/big").json()
    assert body["runs_by_state"]["cancelled"] == RUNS, body["runs_by_state"]
    cluster.wait_for(lambda: _settled(cluster, "big"), 60, "the settling to resume and end")
    cluster.wait_for(
        lambda: _rows(cluster, "after") == {"succeeded": 1}, 60, "the other task to run"
    )
    assert _attempts(cluster, "big") == 0
    assert_nothing_lost(cluster, gateway_killed=True)
