"""Encrypted, authenticated RPC connections: TLS 1.3 with certificates made
from the nodes' own Ed25519 identity keys.

- Every node presents a certificate whose key is its identity key, so the
  key behind a peer ID can be checked against the certificate.
- Without a cluster key the certificates are self-signed: a worker checks
  the gateway's certificate key against the peer ID it dials, and the
  gateway checks the worker with a signed challenge (`cluster_app.host`).
- With a cluster key every node's certificate is signed by a cluster CA
  derived from the key, and both ends require it (mutual TLS): a node
  without the key cannot complete a handshake, so it cannot join, be given
  work or read traffic.
"""

from __future__ import annotations

import datetime
import hashlib
import os
import ssl
import tempfile
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.hashes import SHA256
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.x509.oid import NameOID

from cluster_app.identity import Identity, InvalidPeerID, peer_id_from_public_key

MIN_CLUSTER_KEY_BYTES = 16
_NOT_BEFORE = datetime.datetime(2020, 1, 1, tzinfo=datetime.UTC)
_NOT_AFTER = datetime.datetime(2120, 1, 1, tzinfo=datetime.UTC)
SERVER_NAME = "ww-gateway"  # TLS needs a name; peers are checked by key, not by name


class ClusterKeyError(ValueError):
    """The cluster key file is missing, unreadable or too short."""


class PeerAuthError(Exception):
    """The other end is not who it must be (wrong key, no certificate)."""


def load_cluster_key(path: str | os.PathLike[str]) -> bytes:
    """The shared cluster secret: the file's bytes (at least 16 of them),
    surrounding whitespace ignored."""
    try:
        secret = Path(path).read_bytes().strip()
    except OSError as exc:
        raise ClusterKeyError(f"cannot read cluster key file {path}: {exc.strerror}") from None
    if len(secret) < MIN_CLUSTER_KEY_BYTES:
        raise ClusterKeyError(
            f"cluster key file {path} holds {len(secret)} bytes; at least "
            f"{MIN_CLUSTER_KEY_BYTES} are needed (e.g. `openssl rand -hex 32 > {path}`)"
        )
    return secret


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _cluster_ca(cluster_key: bytes) -> tuple[Ed25519PrivateKey, x509.Certificate]:
    """The cluster CA: its key derived from the secret, its certificate
    deterministic (Ed25519 signatures are), so every member makes the same."""
    seed = HKDF(algorithm=SHA256(), length=32, salt=b"ww-scheduler", info=b"cluster-ca").derive(
        cluster_key
    )
    key = Ed25519PrivateKey.from_private_bytes(seed)
    fingerprint = hashlib.sha256(key.public_key().public_bytes_raw()).hexdigest()[:16]
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(f"ww cluster {fingerprint}"))
        .issuer_name(_name(f"ww cluster {fingerprint}"))
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(_NOT_BEFORE)
        .not_valid_after(_NOT_AFTER)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .sign(key, None)
    )
    return key, cert


def node_certificate(identity: Identity, cluster_key: bytes | None) -> x509.Certificate:
    """A certificate for the node's identity key: self-signed, or signed by
    the cluster CA when there is a cluster key."""
    key = Ed25519PrivateKey.from_private_bytes(identity.private_bytes())
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(identity.peer_id))
        .public_key(key.public_key())
        .serial_number(int.from_bytes(identity.public_key[:8], "big") >> 1 or 1)
        .not_valid_before(_NOT_BEFORE)
        .not_valid_after(_NOT_AFTER)
    )
    if cluster_key is None:
        return builder.issuer_name(_name(identity.peer_id)).sign(key, None)
    ca_key, ca_cert = _cluster_ca(cluster_key)
    return builder.issuer_name(ca_cert.subject).sign(ca_key, None)


@dataclass(frozen=True)
class TlsConfig:
    """What a node needs to make its TLS contexts."""

    identity: Identity
    cluster_key: bytes | None = None

    @property
    def open_cluster(self) -> bool:
        return self.cluster_key is None

    def server_context(self) -> ssl.SSLContext:
        context = self._context(ssl.PROTOCOL_TLS_SERVER)
        if self.cluster_key is not None:
            context.verify_mode = ssl.CERT_REQUIRED  # members only
        return context

    def client_context(self) -> ssl.SSLContext:
        context = self._context(ssl.PROTOCOL_TLS_CLIENT)
        context.check_hostname = False  # the peer is checked by its key
        context.verify_mode = ssl.CERT_REQUIRED if self.cluster_key else ssl.CERT_NONE
        return context

    def _context(self, protocol: int) -> ssl.SSLContext:
        context = ssl.SSLContext(protocol)
        context.minimum_version = ssl.TLSVersion.TLSv1_3
        if protocol == ssl.PROTOCOL_TLS_CLIENT:
            context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        key = Ed25519PrivateKey.from_private_bytes(self.identity.private_bytes())
        cert = node_certificate(self.identity, self.cluster_key)
        # ssl loads keys from files only: a private temporary directory,
        # removed as soon as they are loaded.
        with tempfile.TemporaryDirectory(prefix="ww-tls-") as folder:
            key_path, cert_path = Path(folder, "key.pem"), Path(folder, "cert.pem")
            key_path.touch(mode=0o600)
            key_path.write_bytes(
                key.private_bytes(
                    serialization.Encoding.PEM,
                    serialization.PrivateFormat.PKCS8,
                    serialization.NoEncryption(),
                )
            )
            cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
            context.load_cert_chain(cert_path, key_path)
        if self.cluster_key is not None:
            _, ca_cert = _cluster_ca(self.cluster_key)
            context.load_verify_locations(
                cadata=ca_cert.public_bytes(serialization.Encoding.PEM).decode()
            )
        return context


def peer_id_of_certificate(der: bytes | None) -> str:
    """The peer ID whose key the certificate carries."""
    if not der:
        raise PeerAuthError("the peer presented no certificate")
    try:
        public_key = x509.load_der_x509_certificate(der).public_key()
    except ValueError as exc:
        raise PeerAuthError(f"unreadable certificate: {exc}") from None
    if not isinstance(public_key, Ed25519PublicKey):
        raise PeerAuthError("the peer's certificate key is not Ed25519")
    try:
        return peer_id_from_public_key(public_key.public_bytes_raw())
    except InvalidPeerID as exc:
        raise PeerAuthError(str(exc)) from None


def join_message(gateway_peer_id: str, nonce: bytes) -> bytes:
    """What a worker signs to prove it holds its key: bound to this gateway
    and to a fresh nonce of this connection, so it cannot be replayed."""
    return b"ww-join:" + gateway_peer_id.encode() + b":" + nonce
