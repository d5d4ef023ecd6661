"""The node commands on their own: SIGHUP (the terminal closing) is a
graceful stop for `rungateway` and `runworker`, as SIGTERM is; a worker
started with `--identity-file` keeps its peer ID across restarts, and a
second worker on the same file refuses to start, naming the holder. Real
processes in a private network namespace (static --addr: no multicast)."""

from __future__ import annotations

import signal
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.cluster import Cluster, Proc
from tests.netns import NetNS, new_netns


@pytest.fixture
def ns() -> Iterator[NetNS]:
    space = new_netns()
    yield space
    space.close()


def _log(cluster: Cluster, command: str) -> str:
    return "".join(p.read_text() for p in sorted(cluster.state_dir.glob(f"{command}-*.log")))


def _worker(cluster: Cluster, *args: str) -> Proc:
    assert cluster.gateway is not None
    rpc = cluster.gateway.wait_for_line(lambda s: s.strip().startswith("rpc:"), 10).split()[1]
    return cluster.manage("runworker", "--dial", cluster.peer_id, "--addr", rpc, *args)


def _joined(worker: Proc) -> str:
    """The worker's peer ID, once it has joined."""
    return worker.wait_for_line(lambda s: " joined " in s, 60).split()[1]


def test_sighup_stops_worker_and_gateway_gracefully(ns: NetNS, tmp_path: Path) -> None:
    cluster = Cluster(ns, tmp_path)
    cluster.start_gateway("--no-discovery")
    worker = _worker(cluster)
    _joined(worker)

    worker.popen.send_signal(signal.SIGHUP)
    assert worker.popen.wait(30) == 0  # not killed by the signal (-1)
    assert "SIGHUP: stopping gracefully" in _log(cluster, "runworker")

    assert cluster.gateway is not None
    cluster.gateway.popen.send_signal(signal.SIGHUP)
    assert cluster.gateway.popen.wait(60) == 0
    assert "received SIGHUP, stopping" in _log(cluster, "rungateway")


def test_worker_identity_file_keeps_the_peer_id_and_is_held_by_one_worker(
    ns: NetNS, tmp_path: Path
) -> None:
    key = tmp_path / "worker.key"
    cluster = Cluster(ns, tmp_path / "state")
    cluster.start_gateway("--no-discovery")

    first = _worker(cluster, "--identity-file", str(key))
    peer = _joined(first)
    second = _worker(cluster, "--identity-file", str(key))
    assert second.popen.wait(60) != 0
    assert f"worker identity file {key} is in use: pid {first.pid} holds" in _log(
        cluster, "runworker"
    )
    assert second.lines == []

    first.popen.send_signal(signal.SIGTERM)
    assert first.popen.wait(30) == 0
    again = _worker(cluster, "--identity-file", str(key))
    assert _joined(again) == peer
