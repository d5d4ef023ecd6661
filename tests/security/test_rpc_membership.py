"""Only members join: impostor gateways and nodes without the cluster key
are refused, with reasons logged on both sides. Real processes in a private
network namespace."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

import schema
from cluster_app.identity import Identity, peer_id_bytes
from cluster_app.multiaddr import parse_multiaddr
from cluster_app.multicast import MulticastSocket
from cluster_app.packet import SIGNATURE_DOMAIN
from tests.e2e.cluster import Cluster, seed_form
from tests.netns import NetNS, new_netns

GROUP = "/ip4/228.8.8.8/udp/8822/multicast/lo"
HASH_WASM = Path(__file__).resolve().parents[2] / "hash.wasm"


@pytest.fixture
def ns() -> Iterator[NetNS]:
    space = new_netns()
    yield space
    space.close()


def _log(cluster: Cluster, command: str) -> str:
    return "".join(p.read_text() for p in sorted(cluster.state_dir.glob(f"{command}-*.log")))


def _rpc_addr(cluster: Cluster) -> str:
    assert cluster.gateway is not None
    line = cluster.gateway.wait_for_line(lambda s: s.strip().startswith("rpc:"), 10)
    return line.split()[1]


def test_worker_refuses_a_gateway_that_cannot_prove_the_peer_id(ns: NetNS, tmp_path: Path) -> None:
    real = Cluster(ns, tmp_path / "real")
    real_peer = real.start_gateway()
    impostor = Cluster(ns, tmp_path / "impostor")
    impostor.start_gateway("--http", "127.0.0.1:8081")
    assert impostor.peer_id != real_peer

    # Pointed at the impostor's address while dialing the real peer ID.
    proc = real.manage("runworker", "--dial", real_peer, "--addr", _rpc_addr(impostor))
    real.wait_for(lambda: "not joining" in _log(real, "runworker"), 20, "the worker to refuse")
    log = _log(real, "runworker")
    assert f"proved it holds the key of {impostor.peer_id}, not of {real_peer}" in log
    assert not any(" joined " in line for line in proc.lines)
    assert "joined from" not in _log(impostor, "rungateway")


def _forged_response(impostor: Identity, claimed: str, addr: str) -> bytes:
    """A response that names `claimed` but is signed by the impostor."""
    packet = schema.boot.Packet.new_message(namespace="ww", stamp=int(time.time() * 1000))
    response = packet.init("response")
    response.peer = peer_id_bytes(claimed)
    response.init("addrs", 1)[0] = addr
    payload = packet.to_bytes_packed()
    envelope = schema.boot.Envelope.new_message(
        payload=payload, signature=impostor.sign(SIGNATURE_DOMAIN + payload)
    )
    return envelope.to_bytes_packed()


def test_forged_survey_answers_are_dropped(ns: NetNS, tmp_path: Path) -> None:
    cluster = Cluster(ns, tmp_path)
    real_peer = cluster.start_gateway("--no-discovery")  # only the impostor answers
    impostor = Identity.generate()
    with ns.entered():
        trap = socket.socket()
        trap.bind(("127.0.0.1", 0))
        trap.listen()
    trap.settimeout(0.2)
    trap_addr = f"/ip4/127.0.0.1/tcp/{trap.getsockname()[1]}"
    forged = _forged_response(impostor, real_peer, trap_addr)
    stop = threading.Event()

    def flood() -> None:
        async def send() -> None:
            async with MulticastSocket(parse_multiaddr(GROUP)) as sock:
                while not stop.is_set():
                    sock.send(forged)
                    await asyncio.sleep(0.1)

        with ns.entered():
            asyncio.run(send())

    flooder = threading.Thread(target=flood)
    flooder.start()
    try:
        proc = cluster.manage("runworker", "--dial", real_peer)
        connections = 0
        deadline = time.monotonic() + 4
        while time.monotonic() < deadline:
            try:
                conn, _ = trap.accept()
                connections += 1
                conn.close()
            except TimeoutError:
                pass
        assert connections == 0  # it never dialed the address the forgery gave
        assert not any(" joined " in line for line in proc.lines)
    finally:
        stop.set()
        flooder.join()
        trap.close()


def test_cluster_key_admits_members_only(ns: NetNS, tmp_path: Path) -> None:
    key, wrong = tmp_path / "cluster.key", tmp_path / "wrong.key"
    key.write_text("4f1c0e8a9b7d6c5e4f3a2b1c0d9e8f7a\n")
    wrong.write_text("00000000000000000000000000000000\n")
    cluster = Cluster(ns, tmp_path / "state")
    cluster.start_gateway("--cluster-key-file", str(key))
    member = cluster.start_worker("--cluster-key-file", str(key))
    cluster.wait_joined(member)
    outsider = cluster.manage(
        "runworker", "--dial", cluster.peer_id, "--cluster-key-file", str(wrong)
    )
    keyless = cluster.manage("runworker", "--dial", cluster.peer_id)

    cluster.wait_for(
        lambda: _log(cluster, "rungateway").count("refused RPC connection") >= 2,
        30,
        "the gateway to refuse both outsiders",
    )
    gateway_log = _log(cluster, "rungateway")
    assert "closed cluster" in gateway_log
    assert "not a member of this cluster" in gateway_log
    assert "TLS handshake failed" in _log(cluster, "runworker")
    for proc in (outsider, keyless):
        assert not any(" joined " in line for line in proc.lines)

    response = cluster.request(
        "POST",
        "/tasks",
        data=seed_form(start="0", repeats="2", delay="0.1"),
        files={"wasm": ("hash.wasm", HASH_WASM.read_bytes())},
    )
    assert response.status_code == 201
    body = cluster.wait_for(
        lambda: (t := cluster.request("GET", "/tasks/task1").json())["completions"] == 2 and t,
        30,
        "the member to run the task",
    )
    assert {run["worker"] for run in body["runs"]} == {member}  # nobody else got work


def test_open_cluster_says_so_at_start(ns: NetNS, tmp_path: Path) -> None:
    cluster = Cluster(ns, tmp_path)
    cluster.start_gateway()
    cluster.wait_for(lambda: "open cluster" in _log(cluster, "rungateway"), 10, "the warning")
