"""TLS for RPC: certificates carry the identity key; the cluster key gates
handshakes. In-process, over loopback TCP."""

from __future__ import annotations

import asyncio
import ssl

import pytest
from cryptography.hazmat.primitives.serialization import Encoding

from cluster_app.identity import Identity
from cluster_app.tls import (
    ClusterKeyError,
    PeerAuthError,
    TlsConfig,
    load_cluster_key,
    node_certificate,
    peer_id_of_certificate,
)


def test_certificate_carries_the_identity_key() -> None:
    identity = Identity.generate()
    der = node_certificate(identity, None).public_bytes(Encoding.DER)
    assert peer_id_of_certificate(der) == identity.peer_id


def test_member_certificates_are_signed_by_the_same_cluster_ca() -> None:
    a, b = Identity.generate(), Identity.generate()
    cert_a = node_certificate(a, b"cluster-secret-123")
    cert_b = node_certificate(b, b"cluster-secret-123")
    other = node_certificate(a, b"another-secret-456")
    assert cert_a.issuer == cert_b.issuer
    assert other.issuer != cert_a.issuer


def test_no_certificate_is_refused() -> None:
    with pytest.raises(PeerAuthError):
        peer_id_of_certificate(None)
    with pytest.raises(PeerAuthError):
        peer_id_of_certificate(b"not a certificate")


def test_cluster_key_file_must_hold_enough_bytes(tmp_path) -> None:
    short = tmp_path / "short"
    short.write_text("tiny\n")
    with pytest.raises(ClusterKeyError, match="at least 16"):
        load_cluster_key(short)
    with pytest.raises(ClusterKeyError, match="cannot read"):
        load_cluster_key(tmp_path / "missing")
    good = tmp_path / "good"
    good.write_text("0123456789abcdef0123\n")
    assert load_cluster_key(good) == b"0123456789abcdef0123"


async def _handshake(server: TlsConfig, client: TlsConfig) -> str:
    """Handshake over loopback; returns the server's peer ID as the client
    sees it, or raises what the client sees."""
    accepted: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    async def on_client(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            if await reader.read(1):
                writer.write(b"y")  # the handshake held: answer
                await writer.drain()
        except (ssl.SSLError, ConnectionError):
            pass
        finally:
            writer.close()
            if not accepted.done():
                accepted.set_result(None)

    srv = await asyncio.start_server(on_client, "127.0.0.1", 0, ssl=server.server_context())
    port = srv.sockets[0].getsockname()[1]
    try:
        reader, writer = await asyncio.open_connection(
            "127.0.0.1", port, ssl=client.client_context(), server_hostname="ww-gateway"
        )
        der = writer.get_extra_info("ssl_object").getpeercert(binary_form=True)
        writer.write(b"x")
        await writer.drain()
        # With TLS 1.3 a refused client certificate shows on the first read:
        # an alert (SSLError) or the connection closed without an answer.
        answer = await asyncio.wait_for(reader.read(1), 5)
        writer.close()
        if answer != b"y":
            raise ConnectionError("the server closed the connection without answering")
        return peer_id_of_certificate(der)
    finally:
        srv.close()


def test_open_cluster_handshake_shows_the_gateway_key() -> None:
    gateway, worker = Identity.generate(), Identity.generate()
    seen = asyncio.run(_handshake(TlsConfig(gateway), TlsConfig(worker)))
    assert seen == gateway.peer_id


def test_members_complete_the_handshake() -> None:
    key = b"0123456789abcdef-members"
    gateway, worker = Identity.generate(), Identity.generate()
    seen = asyncio.run(_handshake(TlsConfig(gateway, key), TlsConfig(worker, key)))
    assert seen == gateway.peer_id


@pytest.mark.parametrize("worker_key", [None, b"the-wrong-cluster-key"])
def test_a_node_without_the_cluster_key_cannot_connect(worker_key: bytes | None) -> None:
    gateway, worker = Identity.generate(), Identity.generate()
    with pytest.raises((ssl.SSLError, ConnectionError)):
        asyncio.run(
            _handshake(
                TlsConfig(gateway, b"0123456789abcdef-members"), TlsConfig(worker, worker_key)
            )
        )


def test_a_member_refuses_a_gateway_without_the_cluster_key() -> None:
    gateway, worker = Identity.generate(), Identity.generate()
    with pytest.raises(ssl.SSLError):
        asyncio.run(_handshake(TlsConfig(gateway), TlsConfig(worker, b"0123456789abcdef-x")))
