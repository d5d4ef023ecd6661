"""`Host.module` — how a worker gets a module's bytes — over a real TLS
connection to a real gateway: only a peer that proved its identity, and
was sent a run of the module, gets bytes, only by a well-formed hash of a
stored module (the hostile suite checks the bytes a worker gets)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import capnp
import pytest

from cluster_app.identity import Identity
from cluster_app.multiaddr import parse_multiaddr
from cluster_app.rpc import ClientConnection
from cluster_app.tls import TlsConfig, join_message
from tasks_app.modules import module_hash
from tests.e2e.cluster import Cluster, running_cluster, seed_form

HASH_WASM = (Path(__file__).resolve().parents[2] / "hash.wasm").read_bytes()


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    with running_cluster(tmp_path_factory.mktemp("module-fetch")) as cluster:
        response = cluster.request(
            "POST", "/tasks", data=seed_form(start="60"), files={"wasm": ("h.wasm", HASH_WASM)}
        )
        assert response.status_code == 201, response.text
        yield cluster


def _ask(cluster: Cluster, digest: str, *, authenticate: bool) -> bytes | str:
    """Dial the gateway as a fresh peer and ask for `digest`: the bytes, or
    the error's text."""
    assert cluster.gateway is not None
    line = cluster.gateway.wait_for_line(lambda s: s.strip().startswith("rpc:"), 10)
    addr = parse_multiaddr(line.split()[1])

    async def main() -> bytes | str:
        async with capnp.kj_loop():
            identity = Identity.generate()
            conn = await ClientConnection.dial(
                addr, tls=TlsConfig(identity, None), expect_peer=cluster.peer_id
            )
            try:
                host = conn.host
                if authenticate:
                    nonce = bytes((await host.challenge()).nonce)
                    signature = identity.sign(join_message(conn.peer_id, nonce))
                    await host.authenticate(peer=identity.peer_id, signature=signature)
                try:
                    return bytes((await host.module(digest)).wasm)
                except capnp.KjException as exc:
                    return str(exc)
            finally:
                conn.close()
                await asyncio.sleep(0.05)

    with cluster.netns.entered():
        return asyncio.run(main())


def test_a_proven_peer_never_sent_a_run_of_a_stored_module_gets_nothing(cluster: Cluster) -> None:
    # A member may read only the modules of runs it was given (a worker of
    # the open cluster could otherwise read every module ever submitted).
    answer = _ask(cluster, module_hash(HASH_WASM), authenticate=True)
    assert isinstance(answer, str) and "no run of module" in answer


def test_a_peer_that_did_not_prove_its_identity_gets_nothing(cluster: Cluster) -> None:
    answer = _ask(cluster, module_hash(HASH_WASM), authenticate=False)
    assert isinstance(answer, str) and "authenticate first" in answer


@pytest.mark.parametrize(
    ("digest", "why"),
    [
        ("0" * 64, "no run of module"),
        ("../../etc/passwd", "64 lowercase hex digits"),
        ("A" * 64, "64 lowercase hex digits"),
        ("", "64 lowercase hex digits"),
    ],
)
def test_unknown_or_malformed_hashes_are_refused(cluster: Cluster, digest: str, why: str) -> None:
    answer = _ask(cluster, digest, authenticate=True)
    assert isinstance(answer, str) and why in answer
    assert cluster.gateway is not None and cluster.gateway.popen.poll() is None
