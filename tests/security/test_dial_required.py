"""A worker must know whom it joins (issue 15.8): `runworker` needs `--dial
PEERID` or a cluster key. With neither it refuses to start, whether it would
discover by multicast or dial a static `--addr` (TLS there proves only that
the other end holds *a* key). With `--dial` it does not join a gateway that
answers its surveys with another key. Real processes in a private network
namespace."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.cluster import Cluster, Proc
from tests.netns import NetNS, new_netns

CLUSTER_KEY = "9c2f4e6a8b0d1f3e5a7c9b1d3f5e7a9c\n"


@pytest.fixture
def ns() -> Iterator[NetNS]:
    space = new_netns()
    yield space
    space.close()


def _log(cluster: Cluster, command: str) -> str:
    return "".join(p.read_text() for p in sorted(cluster.state_dir.glob(f"{command}-*.log")))


def _rpc_addr(cluster: Cluster) -> str:
    assert cluster.gateway is not None
    return cluster.gateway.wait_for_line(lambda s: s.strip().startswith("rpc:"), 10).split()[1]


def _exit_code(proc: Proc, timeout: float = 60) -> int:
    return proc.popen.wait(timeout)


@pytest.mark.parametrize("static", [False, True], ids=["multicast", "static-addr"])
def test_runworker_without_dial_or_cluster_key_refuses_to_start(
    ns: NetNS, tmp_path: Path, static: bool
) -> None:
    impostor = Cluster(ns, tmp_path / "impostor")
    impostor.start_gateway()  # answers surveys, with a key nobody asked for
    args = ("--addr", _rpc_addr(impostor)) if static else ()
    worker = impostor.manage("runworker", *args)
    assert _exit_code(worker) != 0
    message = _log(impostor, "runworker")
    assert "runworker needs to know whom it joins" in message
    assert "--dial PEERID" in message and "--cluster-key-file" in message
    assert worker.lines == [], "it refused before making an identity or surveying"
    assert "joined from" not in _log(impostor, "rungateway")


def test_a_cluster_key_alone_is_enough(ns: NetNS, tmp_path: Path) -> None:
    key = tmp_path / "cluster.key"
    key.write_text(CLUSTER_KEY)
    cluster = Cluster(ns, tmp_path / "state", WW_CLUSTER_KEY_FILE=str(key))
    cluster.start_gateway()
    worker = cluster.manage("runworker")  # the key from WW_CLUSTER_KEY_FILE, no --dial
    line = worker.wait_for_line(lambda s: " joined " in s, 60)
    assert line.split()[3] == cluster.peer_id


def test_a_dialing_worker_ignores_an_impostor_answering_its_surveys(
    ns: NetNS, tmp_path: Path
) -> None:
    real = Cluster(ns, tmp_path / "real")
    real_peer = real.start_gateway("--no-discovery")  # only the impostor answers surveys
    impostor = Cluster(ns, tmp_path / "impostor")
    impostor_peer = impostor.start_gateway("--http", "127.0.0.1:8081")
    casm = real.manage("casm_ls")
    real.wait_for(lambda: "listening on" in _log(real, "casm_ls"), 60, "casm_ls to join")

    worker = real.manage("runworker", "--dial", real_peer)
    worker_peer = worker.wait_for_line(lambda s: s.startswith("worker "), 60).split()[1]
    # Evidence instead of a waiting period: the impostor answered this
    # worker's survey, and the worker went on surveying after that answer.
    response = re.compile(rf"  type:      response\n(?:  .*\n)*?  peer:      {impostor_peer}\n")
    survey = re.compile(rf"  type:      survey\n(?:  .*\n)*?  peer:      {worker_peer}\n")

    def surveyed_after_the_answer() -> bool:
        out = casm.output()
        answered = response.search(out)
        return bool(answered and survey.search(out, answered.end()))

    real.wait_for(surveyed_after_the_answer, 60, "the worker to survey on after the answer")
    assert not any(" joined " in line for line in worker.lines)
    assert "joined from" not in _log(impostor, "rungateway")
    assert worker.popen.poll() is None, "it keeps looking for the peer it was told to dial"
