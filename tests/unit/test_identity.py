"""Ed25519 identities and libp2p peer IDs."""

from __future__ import annotations

import stat
from pathlib import Path

import base58
import pytest
from hypothesis import given
from hypothesis import strategies as st

from cluster_app.identity import (
    Identity,
    InvalidIdentityFile,
    InvalidPeerID,
    peer_id_bytes,
    peer_id_from_bytes,
    peer_id_from_public_key,
    public_key_from_peer_id,
    verify,
)

# RFC 8032, section 7.1, TEST 1: a published Ed25519 seed and its public key.
RFC8032_SEED = bytes.fromhex("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60")
RFC8032_PUBLIC = bytes.fromhex("d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a")
# Computed once by hand: base58btc(00 24 | 08 01 12 20 | RFC8032_PUBLIC).
RFC8032_PEER_ID = "12D3KooWQK1wnefoLrcVHbbnf5tLzbopUd3K3bFAoJpA7YJgL5pV"


def test_known_seed_gives_known_peer_id() -> None:
    ident = Identity.from_private_bytes(RFC8032_SEED)
    assert ident.public_key == RFC8032_PUBLIC
    assert ident.peer_id == RFC8032_PEER_ID


def test_peer_id_is_identity_multihash_of_protobuf_key() -> None:
    raw = bytes([0x00, 0x24, 0x08, 0x01, 0x12, 0x20]) + RFC8032_PUBLIC
    assert base58.b58encode(raw).decode() == RFC8032_PEER_ID
    assert peer_id_from_public_key(RFC8032_PUBLIC) == RFC8032_PEER_ID
    assert peer_id_bytes(RFC8032_PEER_ID) == raw
    assert peer_id_from_bytes(raw) == RFC8032_PEER_ID
    assert public_key_from_peer_id(RFC8032_PEER_ID) == RFC8032_PUBLIC
    assert public_key_from_peer_id(raw) == RFC8032_PUBLIC


def test_rfc8032_signature_matches_published_vector() -> None:
    # TEST 1 signs the empty message; Ed25519 is deterministic.
    expected = bytes.fromhex(
        "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e06522490155"
        "5fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b"
    )
    ident = Identity.from_private_bytes(RFC8032_SEED)
    assert ident.sign(b"") == expected
    assert verify(RFC8032_PEER_ID, b"", expected)


@given(st.binary(min_size=32, max_size=32))
def test_any_seed_gives_12D3KooW_id_that_round_trips(seed: bytes) -> None:
    ident = Identity.from_private_bytes(seed)
    assert ident.peer_id.startswith("12D3KooW")
    assert len(ident.peer_id) in (52, 53)
    assert len(peer_id_bytes(ident.peer_id)) == 38
    assert peer_id_from_bytes(peer_id_bytes(ident.peer_id)) == ident.peer_id
    assert public_key_from_peer_id(ident.peer_id) == ident.public_key


@given(st.binary(max_size=200))
def test_sign_verify_round_trip_and_rejects_other_data(data: bytes) -> None:
    ident = Identity.from_private_bytes(RFC8032_SEED)
    sig = ident.sign(data)
    assert verify(ident.peer_id, data, sig)
    assert not verify(ident.peer_id, data + b"x", sig)
    assert not verify(Identity.generate().peer_id, data, sig)


def test_verify_is_false_for_malformed_inputs() -> None:
    ident = Identity.generate()
    sig = ident.sign(b"m")
    assert not verify("not-a-peer-id", b"m", sig)
    assert not verify(ident.peer_id, b"m", sig[:-1])
    assert not verify(ident.peer_id, b"m", b"")


@pytest.mark.parametrize(
    "bad",
    [
        "",
        "12D3KooW",
        "QmYyQSo1c1Ym7orWxLYvCrM2EmxFTANf8wXmmE7DWjhx5N",  # sha256 multihash (RSA-style ID)
        "12D3KooWQK1wnefoLrcVHbbnf5tLzbopUd3K3bFAoJpA7YJgL5p0",  # '0' is not base58
        "12D3KooWQK1wnefoLrcVHbbnf5tLzbopUd3K3bFAoJpA7YJgL5pVV",  # one char too many
        "112D3KooWQK1wnefoLrcVHbbnf5tLzbopUd3K3bFAoJpA7YJgL5pV",  # extra leading zero byte
        "12D3KooW" + "é" * 44,
        "x" * 10_000,
    ],
)
def test_malformed_peer_id_text_raises_invalid_peer_id(bad: str) -> None:
    with pytest.raises(InvalidPeerID):
        public_key_from_peer_id(bad)


def test_wrong_key_type_bytes_raise_invalid_peer_id() -> None:
    secp256k1 = bytes([0x00, 0x25, 0x08, 0x02, 0x12, 0x21]) + bytes(33)
    with pytest.raises(InvalidPeerID):
        peer_id_from_bytes(secp256k1)
    with pytest.raises(InvalidPeerID):
        public_key_from_peer_id(bytes([0x00, 0x24, 0x08, 0x02, 0x12, 0x20]) + bytes(32))
    with pytest.raises(InvalidPeerID):
        public_key_from_peer_id(base58.b58encode(secp256k1).decode())


@given(st.text(max_size=80))
def test_peer_id_parsing_of_arbitrary_text_raises_only_invalid_peer_id(text: str) -> None:
    try:
        key = public_key_from_peer_id(text)
    except InvalidPeerID:
        return
    assert peer_id_from_public_key(key) == text


@given(st.binary(max_size=60))
def test_peer_id_from_arbitrary_bytes_raises_only_invalid_peer_id(raw: bytes) -> None:
    try:
        text = peer_id_from_bytes(raw)
    except InvalidPeerID:
        return
    assert peer_id_bytes(text) == raw


def test_load_or_create_writes_private_seed_and_reloads_same_identity(tmp_path: Path) -> None:
    path = tmp_path / "nested" / "dir" / "identity.key"
    first = Identity.load_or_create(path)
    assert path.read_bytes() == first.private_bytes()
    assert len(path.read_bytes()) == 32
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert Identity.load_or_create(path).peer_id == first.peer_id
    assert list(path.parent.iterdir()) == [path]  # no temp file left behind


def test_load_or_create_reads_an_existing_seed(tmp_path: Path) -> None:
    path = tmp_path / "identity.key"
    path.write_bytes(RFC8032_SEED)
    assert Identity.load_or_create(path).peer_id == RFC8032_PEER_ID


@pytest.mark.parametrize("content", [b"", b"short", bytes(33), b"\n" + RFC8032_SEED])
def test_corrupt_identity_file_raises_clear_error(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "identity.key"
    path.write_bytes(content)
    with pytest.raises(InvalidIdentityFile, match="corrupt"):
        Identity.load_or_create(path)
    assert path.read_bytes() == content  # never overwritten


def test_identity_is_immutable_and_compares_by_peer_id() -> None:
    a = Identity.from_private_bytes(RFC8032_SEED)
    b = Identity.from_private_bytes(RFC8032_SEED)
    assert a == b and hash(a) == hash(b)
    assert a != Identity.generate()
    with pytest.raises(AttributeError):
        a.peer_id = "x"  # type: ignore[misc]
    with pytest.raises(ValueError):
        Identity.from_private_bytes(bytes(31))
