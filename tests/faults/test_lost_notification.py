"""A task whose notification never reaches the scheduler (written by
another process, a full channel, a Redis hiccup) still runs: the scheduler
sweeps the database for due runs nobody announced."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable

from tests.e2e.cluster import MANAGE, PROJECT_ROOT, Cluster
from tests.faults.harness import NOOP_WAT, Ledger, assert_nothing_lost, wait_finished, wasm


def test_runs_nobody_announced_are_found_by_the_sweep(
    make_cluster: Callable[..., Cluster], ledger: Ledger
) -> None:
    cluster = make_cluster(workers=1, WW_SWEEP_INTERVAL="0.5")
    module = cluster.state_dir / "noop.wasm"
    module.write_bytes(wasm(NOOP_WAT))
    # Stored straight through the service, from another process: no
    # notification is sent to the gateway.
    script = (
        "from pathlib import Path; from tasks_app import services; "
        f"services.create_task(task_id='quiet', description='', wasm=Path('{module}')"
        ".read_bytes(), duration=5, start=0, delay=0.1, repeats=3, input=1, difficulty=2)"
    )
    subprocess.run(
        [sys.executable, MANAGE, "shell", "-c", script],
        env=cluster.env,
        cwd=PROJECT_ROOT,
        check=True,
        timeout=60,
    )
    body = wait_finished(cluster, "quiet", timeout=30)
    assert body["completions"] == 3
    assert all(run["result"] == "3" for run in body["runs"])
    ledger.record(faults=1, counts=assert_nothing_lost(cluster))
