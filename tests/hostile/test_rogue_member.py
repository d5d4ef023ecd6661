"""A hostile member of the open cluster (tests/hostile/rogue_worker.py, a
real process with a fresh key) next to one honest worker, against a real
gateway in a private network namespace. What it answers that no honest
worker sends loses only its attempts: the runs end on the honest worker
with the honest result, the rogue is disconnected, the gateway's memory
stays bounded, and the cluster serves a good task after."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.cluster import PROJECT_ROOT, Cluster, Proc, running_cluster, seed_form
from tests.hostile.memory import rss_mb

ROGUE = str(Path(__file__).with_name("rogue_worker.py"))
HASH_WASM = (PROJECT_ROOT / "hash.wasm").read_bytes()
FINAL = {"succeeded", "failed", "timed_out", "cancelled"}
RSS_BOUND_MB = 500


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Cluster]:
    with running_cluster(
        tmp_path,
        workers=1,
        concurrency=2,
        WW_MAX_WORKER_CONCURRENCY="2",
        WW_WORKER_MAX_FAULTS="2",
        WW_CALL_GRACE="2",
        WW_PING_INTERVAL="0.5",
        WW_PING_TIMEOUT="2",
    ) as cluster:
        yield cluster


def _rogue(cluster: Cluster, mode: str) -> Proc:
    assert cluster.gateway is not None
    line = cluster.gateway.wait_for_line(lambda s: s.strip().startswith("rpc:"), 10)
    popen = cluster.netns.spawn(
        [sys.executable, ROGUE, line.split()[1], cluster.peer_id, mode],
        env=cluster.env,
        cwd=PROJECT_ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    rogue = Proc(popen)
    rogue.wait_for_line(lambda s: s == "rogue joined", 30)
    return rogue


def _submit(cluster: Cluster, task_id: str, **fields: str) -> None:
    form = seed_form(id=task_id, start="0", delay="0", duration="1", **fields)
    response = cluster.request(
        "POST", "/tasks", data=form, files={"wasm": ("hash.wasm", HASH_WASM)}
    )
    assert response.status_code == 201, response.text


def _runs(cluster: Cluster, task_id: str) -> list[tuple[str, str]]:
    """(state, result) of each run, from the database itself."""
    path = cluster.state_dir / "db.sqlite3"
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30) as conn:
        return conn.execute(
            'SELECT state, result FROM tasks_app_iteration WHERE task_id = ? ORDER BY "index"',
            (task_id,),
        ).fetchall()


def _finished(cluster: Cluster, task_id: str, timeout: float = 60) -> list[tuple[str, str]]:
    def check() -> list[tuple[str, str]] | None:
        runs = _runs(cluster, task_id)
        return runs if runs and all(state in FINAL for state, _ in runs) else None

    result: list[tuple[str, str]] = cluster.wait_for(check, timeout, f"{task_id} to finish")
    return result


def _serves_a_good_task(cluster: Cluster, task_id: str) -> None:
    _submit(cluster, task_id, repeats="1")
    assert _finished(cluster, task_id) == [("succeeded", "2832")]


def _gateway_log(cluster: Cluster) -> str:
    return cluster.gateway_log()


@pytest.mark.parametrize("mode", ["garbage", "huge", "huge_stderr", "huge_bytes"])
def test_malformed_answers_lose_only_the_rogues_attempts(cluster: Cluster, mode: str) -> None:
    assert cluster.gateway is not None
    rogue = _rogue(cluster, mode)
    peak = 0.0
    _submit(cluster, f"{mode}-runs", repeats="20")

    def done() -> list[tuple[str, str]] | None:
        nonlocal peak
        peak = max(peak, rss_mb(cluster.gateway.pid))  # type: ignore[union-attr]
        runs = _runs(cluster, f"{mode}-runs")
        return runs if runs and all(state in FINAL for state, _ in runs) else None

    runs = cluster.wait_for(done, 90, "every run to end")
    # Every run ended on the honest worker, with the honest answer.
    assert runs == [("succeeded", "2832")] * 20
    assert peak < RSS_BOUND_MB, f"gateway peaked at {peak:.0f} MB"
    log = _gateway_log(cluster)
    assert "malformed answer" in log
    # Counted against its peer ID: disconnected at the second fault, and
    # refused when it offers itself again.
    rogue.wait_for_line(lambda s: s == "rogue disconnected", 30)
    cluster.wait_for(
        lambda: "answered malformed outcomes 2 times" in _gateway_log(cluster),
        30,
        "the rogue to be refused",
    )
    _serves_a_good_task(cluster, f"{mode}-after")
    rogue.popen.kill()
    rogue.popen.wait(10)


def test_a_forged_concurrency_is_capped(cluster: Cluster) -> None:
    rogue = _rogue(cluster, "forge")
    capped = f"claims concurrency {2**32 - 1}; taken as 2"
    cluster.wait_for(lambda: capped in _gateway_log(cluster), 20, "the rogue to be admitted")
    path = cluster.state_dir / "db.sqlite3"
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30) as conn:
        claimed = conn.execute(
            "SELECT MAX(concurrency) FROM cluster_app_workernode WHERE connected"
        ).fetchone()[0]
    assert claimed == 2
    # Forged results are accepted in an open cluster (README: what it
    # trusts); the rogue gets no more than its capped share.
    _submit(cluster, "shared", repeats="40")
    runs = _finished(cluster, "shared")
    forged = sum(result == "forged-by-rogue" for _, result in runs)
    assert forged <= 30, f"the rogue took {forged} of 40 runs"
    rogue.popen.kill()
    rogue.popen.wait(10)
    _serves_a_good_task(cluster, "after-forge")


def test_a_run_held_without_answer_is_taken_back_and_the_rogue_disconnected(
    cluster: Cluster,
) -> None:
    rogue = _rogue(cluster, "silent")
    _submit(cluster, "held", repeats="6")
    rogue.wait_for_line(lambda s: s == "rogue holds a run", 30)
    runs = _finished(cluster, "held", timeout=60)
    assert runs == [("succeeded", "2832")] * 6
    # Given up on after its time limit plus WW_CALL_GRACE: disconnected, so
    # it offers itself again (it stayed connected and idle before).
    rogue.wait_for_line(lambda s: s == "rogue disconnected", 30)
    cluster.wait_for(
        lambda: sum(line == "rogue joined" for line in rogue.lines) >= 2, 30, "the rogue to rejoin"
    )
    rogue.popen.kill()
    rogue.popen.wait(10)
    _serves_a_good_task(cluster, "after-silent")


def test_a_member_reads_only_modules_it_was_sent_a_few_at_a_time(cluster: Cluster) -> None:
    assert cluster.gateway is not None
    rogue = _rogue(cluster, "fetch")
    baseline = rss_mb(cluster.gateway.pid)
    _submit(cluster, "fetched", repeats="10")  # some go to the rogue
    line = rogue.wait_for_line(lambda s: s.startswith("200 at once:"), 60)
    got = int(line.split()[3])
    assert got <= 1, line  # the same module again at once is refused
    never = next(s for s in rogue.lines if s.startswith("never sent:"))
    assert "refused" in never and "no run of module" in never
    assert rss_mb(cluster.gateway.pid) < max(RSS_BOUND_MB, baseline + 100)
    rogue.popen.kill()
    rogue.popen.wait(10)
    _serves_a_good_task(cluster, "after-fetch")
