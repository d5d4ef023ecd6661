"""A worker's network link is cut mid-run and restored later. Gateway and
workers are separate "hosts": network namespaces joined by veth pairs
(10.201.k.0/24 exists only inside them). The gateway notices by its
liveness pings, re-dispatches the run, and the worker rejoins by itself
once its link is back."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.ci import missing_dependency
from tests.e2e.cluster import Cluster
from tests.faults.harness import (
    BUSY_WAT,
    FAST_LIVENESS,
    NOOP_WAT,
    Ledger,
    assert_nothing_lost,
    busy_iterations,
    submit,
    wait_finished,
    wait_running,
)
from tests.netns import NetNS, NetNSUnavailable

RPC_PORT = 7000


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, timeout=10)


@pytest.fixture
def hosts() -> Iterator[tuple[NetNS, list[NetNS]]]:
    """A gateway host and two worker hosts, each linked to the gateway."""
    spaces: list[NetNS] = []
    try:
        gateway = NetNS()
        spaces.append(gateway)
        workers = []
        for k in (1, 2):
            worker = NetNS()
            spaces.append(worker)
            workers.append(worker)
            _ip(
                "-n",
                gateway.name,
                "link",
                "add",
                f"g{k}",
                "type",
                "veth",
                "peer",
                "name",
                f"w{k}",
                "netns",
                worker.name,
            )
            _ip("-n", gateway.name, "addr", "add", f"10.201.{k}.1/24", "dev", f"g{k}")
            _ip("-n", worker.name, "addr", "add", f"10.201.{k}.2/24", "dev", f"w{k}")
            _ip("-n", gateway.name, "link", "set", f"g{k}", "up")
            _ip("-n", worker.name, "link", "set", f"w{k}", "up")
    except (NetNSUnavailable, OSError, subprocess.CalledProcessError) as exc:
        for space in spaces:
            space.close()
        missing_dependency(f"cannot build veth-linked namespaces: {exc}")
    yield gateway, workers
    for space in reversed(spaces):
        space.close()


def test_link_cut_mid_run_then_restored(
    hosts: tuple[NetNS, list[NetNS]], tmp_path: Path, ledger: Ledger
) -> None:
    gateway_ns, worker_ns = hosts
    cluster = Cluster(gateway_ns, tmp_path, **FAST_LIVENESS)
    cluster.start_gateway("--listen", f"/ip4/0.0.0.0/tcp/{RPC_PORT}", "--no-discovery")
    link_of: dict[str, tuple[NetNS, str]] = {}
    for k, ns in enumerate(worker_ns, start=1):
        peer = cluster.start_worker(
            "--addr", f"/ip4/10.201.{k}.1/tcp/{RPC_PORT}", "--concurrency", "1", netns=ns
        )
        cluster.wait_joined(peer)
        link_of[peer] = (ns, f"w{k}")

    submit(cluster, BUSY_WAT, id="cut", start="0", repeats="1", input=busy_iterations(3))
    victim = wait_running(cluster, "cut")["runs"][0]["worker"]
    victim_ns, device = link_of[victim]
    _ip("-n", victim_ns.name, "link", "set", device, "down")

    (run,) = wait_finished(cluster, "cut", timeout=60)["runs"]
    assert run["state"] == "succeeded"
    outcomes = [(a["outcome"], a["worker"]) for a in run["attempts"]]
    assert outcomes[0] == ("lost", victim)
    assert outcomes[-1][0] == "succeeded" and outcomes[-1][1] != victim

    _ip("-n", victim_ns.name, "link", "set", device, "up")
    (victim_proc,) = [proc for proc, peer in cluster.workers if peer == victim]
    cluster.wait_for(
        lambda: sum(" joined " in line for line in victim_proc.lines) >= 2,
        60,
        "the cut-off worker to rejoin",
    )
    submit(cluster, NOOP_WAT, id="after", start="0", repeats="6", delay="0.2")
    after = wait_finished(cluster, "after")
    assert after["completions"] == 6
    assert victim in {r["worker"] for r in after["runs"]}  # it serves again
    ledger.record(faults=2, counts=assert_nothing_lost(cluster))
