"""Connection floods against a real gateway (issue 15, items 2 and 3's idle
connections): more connections than the gateway has descriptors, slowloris
on HTTP, a thousand TLS connections that never authenticate. The gateway
runs for real in a private network namespace, with a low `ulimit -n` where
the flood must exhaust it; attackers use other loopback addresses than the
legit client (127.0.0.1). Each test ends with the cluster serving a good
task."""

from __future__ import annotations

import resource
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.cluster import HTTP
from tests.hostile.flood import (
    RSS_BOUND_MB,
    LimitedCluster,
    Slowloris,
    close_all,
    connect_many,
    open_fds,
    open_files_limit,
    run_good_task,
    sampling,
    sources,
    tls_handshake_many,
    wait_all_closed,
)
from tests.hostile.memory import rss_mb
from tests.netns import NetNS, new_netns

LOW_NOFILE = 256
HTTP_PORT = int(HTTP.rsplit(":", 1)[1])


@pytest.fixture
def ns() -> Iterator[NetNS]:
    space = new_netns()
    try:
        yield space
    finally:
        space.close()


def test_rpc_listener_survives_running_out_of_descriptors(ns: NetNS, tmp_path: Path) -> None:
    # No cap on connections still authenticating: this test is about the
    # accept loop meeting EMFILE, whatever the caps would spare it.
    cluster = LimitedCluster(
        ns, tmp_path, nofile=(LOW_NOFILE, LOW_NOFILE), WW_RPC_MAX_UNAUTHENTICATED="0"
    )
    cluster.start_gateway()
    assert open_files_limit(cluster.gateway_pid) == (LOW_NOFILE, LOW_NOFILE)

    # Plain TCP, no TLS bytes, from 8 addresses (under the per-source cap):
    # more connections than the gateway has descriptors.
    flood = connect_many(ns, cluster.rpc_port(), 2 * LOW_NOFILE, sources(8))
    try:
        assert len(flood) > LOW_NOFILE
        cluster.wait_for(
            lambda: "cannot accept RPC connections" in cluster.gateway_log(),
            30,
            "the gateway to log that it is out of descriptors",
        )
        assert "Too many open files" in cluster.gateway_log()
    finally:
        close_all(flood)

    worker = cluster.start_worker()
    cluster.wait_joined(worker, timeout=60)
    run_good_task(cluster, "after-descriptor-flood")
    assert "accepting RPC connections again" in cluster.gateway_log()


def test_slowloris_on_http_starves_neither_http_nor_rpc(ns: NetNS, tmp_path: Path) -> None:
    cluster = LimitedCluster(
        ns, tmp_path, nofile=(LOW_NOFILE, LOW_NOFILE), WW_HTTP_HEADER_TIMEOUT="3"
    )
    cluster.start_gateway()
    pid = cluster.gateway_pid
    idle_fds = open_fds(pid)

    # More half-sent requests than the gateway has descriptors, from one
    # address, kept up (a closed one is replaced) while the legit client works.
    with (
        sampling(lambda: open_fds(pid)) as fds,
        Slowloris(ns, HTTP_PORT, LOW_NOFILE + 44, "127.0.0.2") as attack,
    ):
        cluster.wait_for(lambda: attack.most_held > 0, 30, "the attack to hold connections")
        time.sleep(1.0)  # a tick of trickled header lines
        assert cluster.request("GET", "/tasks").status_code == 200
        worker = cluster.start_worker()  # an RPC connect during the attack
        cluster.wait_joined(worker, timeout=60)
        cluster.wait_for(lambda: attack.timed_out > 0, 30, "a half-sent request to time out")
        assert cluster.request("GET", "/tasks").status_code == 200

    log = cluster.gateway_log()
    assert "request headers not complete within 3 s" in log
    assert "refused HTTP connection from 127.0.0.2" in log
    assert attack.refused > 0
    print(f"gateway descriptors: {idle_fds} idle, at most {max(fds):.0f} during the attack")
    # The gateway's side: the attack held at most WW_HTTP_MAX_PER_SOURCE's
    # default (64) descriptors; the rest is the worker, the legit client,
    # the database (a margin of 24).
    assert max(fds) - idle_fds <= 64 + 24, (max(fds), idle_fds)
    run_good_task(cluster, "after-slowloris")


def test_idle_tls_connections_are_closed_and_memory_stays_bounded(
    ns: NetNS, tmp_path: Path
) -> None:
    # A low soft limit under the usual hard one: the gateway raises its own.
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    assert hard > 2000, "this test needs a hard descriptor limit above 2000"
    cluster = LimitedCluster(ns, tmp_path, nofile=(LOW_NOFILE, hard))
    cluster.start_gateway()
    pid = cluster.gateway_pid
    assert open_files_limit(pid) == (hard, hard)
    assert f"open file limit raised from {LOW_NOFILE} to {hard}" in cluster.gateway_log()
    cluster.wait_joined(cluster.start_worker())
    run_good_task(cluster, "before-idle-flood")
    baseline = rss_mb(pid)

    # 1,000 connections from 16 addresses (under the per-source cap) that
    # try a TLS handshake and, when it completes, never authenticate.
    with sampling(lambda: rss_mb(pid)) as samples:
        idle = tls_handshake_many(ns, cluster.rpc_port(), 1000, sources(16))
        try:
            # Beyond WW_RPC_MAX_UNAUTHENTICATED (256) the handshake is refused.
            assert 0 < len(idle) <= 256, len(idle)
            during = rss_mb(pid)
            still_open = wait_all_closed(idle, 60)
            assert still_open == [], f"{len(still_open)} idle connections still open"
        finally:
            close_all(idle)
    log = cluster.gateway_log()
    assert "not authenticated within 10 s" in log
    assert "connections are not authenticated yet" in log
    peak = max(samples)
    assert peak < RSS_BOUND_MB, f"gateway RSS peaked at {peak:.0f} MB"

    cluster.wait_for(lambda: open_fds(pid) < 200, 30, "the gateway to let go of descriptors")
    cluster.wait_joined(cluster.start_worker())
    run_good_task(cluster, "after-idle-flood")
    after = rss_mb(pid)
    print(
        f"gateway RSS: baseline {baseline:.0f} MB, during {during:.0f} MB, "
        f"peak {peak:.0f} MB, after {after:.0f} MB"
    )
    assert after < baseline + 64, f"RSS {after:.0f} MB after, {baseline:.0f} MB before"
