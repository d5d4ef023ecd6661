"""A peer's Ed25519 identity and libp2p peer IDs.

A peer ID is the base58btc text of an identity multihash (``00 24``) wrapping
libp2p's protobuf form of the public key (``08 01 12 20`` then the 32 raw key
bytes); Ed25519 IDs therefore start with ``12D3KooW``. Pure: no Django, no I/O
apart from :meth:`Identity.load_or_create`.
"""

from __future__ import annotations

import os
from pathlib import Path

import base58
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    PublicFormat,
)

KEY_BYTES = 32
# identity multihash (code 0x00, length 36) + protobuf PublicKey{Type: Ed25519, Data: 32 bytes}
PEER_ID_PREFIX = bytes([0x00, 0x24, 0x08, 0x01, 0x12, 0x20])
PEER_ID_BYTES = len(PEER_ID_PREFIX) + KEY_BYTES
# base58 of 38 bytes is 52 or 53 characters; anything much longer is not an ID
# and is rejected before the (quadratic) base58 decoder sees it.
_MAX_PEER_ID_TEXT = 64


class InvalidPeerID(ValueError):
    """The text or bytes are not an Ed25519 libp2p peer ID."""


class InvalidIdentityFile(ValueError):
    """An identity key file exists but does not hold a 32-byte Ed25519 seed."""


def peer_id_from_public_key(pub: bytes) -> str:
    """The peer ID of a raw 32-byte Ed25519 public key."""
    if len(pub) != KEY_BYTES:
        raise InvalidPeerID(f"an Ed25519 public key is {KEY_BYTES} bytes, got {len(pub)}")
    return base58.b58encode(PEER_ID_PREFIX + bytes(pub)).decode("ascii")


def peer_id_bytes(peer_id: str) -> bytes:
    """The 38 multihash bytes behind a peer ID's text."""
    if not isinstance(peer_id, str):
        raise InvalidPeerID(f"a peer ID is text, got {type(peer_id).__name__}")
    if not peer_id or len(peer_id) > _MAX_PEER_ID_TEXT:
        raise InvalidPeerID(f"not a peer ID (length {len(peer_id)}): {peer_id[:70]!r}")
    try:
        raw = base58.b58decode(peer_id.encode("ascii"))
    except (ValueError, UnicodeError) as exc:
        raise InvalidPeerID(f"peer ID is not base58btc: {peer_id!r}") from exc
    _check_multihash(raw)
    # Reject non-canonical spellings so one key has exactly one ID text.
    if base58.b58encode(raw).decode("ascii") != peer_id:
        raise InvalidPeerID(f"peer ID is not canonical base58btc: {peer_id!r}")
    return raw


def peer_id_from_bytes(b: bytes) -> str:
    """The text of a peer ID given as its 38 multihash bytes."""
    return base58.b58encode(_checked_bytes(b)).decode("ascii")


def public_key_from_peer_id(peer_id: str | bytes) -> bytes:
    """The raw 32-byte Ed25519 public key inside a peer ID (text or bytes)."""
    raw = peer_id_bytes(peer_id) if isinstance(peer_id, str) else _checked_bytes(peer_id)
    return raw[len(PEER_ID_PREFIX) :]


def verify(peer_id: str, data: bytes, signature: bytes) -> bool:
    """Whether ``signature`` is the peer's Ed25519 signature over ``data``."""
    try:
        key = Ed25519PublicKey.from_public_bytes(public_key_from_peer_id(peer_id))
        key.verify(bytes(signature), bytes(data))
    except (InvalidPeerID, InvalidSignature, ValueError, TypeError):
        return False
    return True


def _checked_bytes(b: object) -> bytes:
    if not isinstance(b, bytes | bytearray | memoryview):
        raise InvalidPeerID(f"peer ID bytes expected, got {type(b).__name__}")
    raw = bytes(b)
    _check_multihash(raw)
    return raw


def _check_multihash(raw: bytes) -> None:
    if len(raw) != PEER_ID_BYTES:
        raise InvalidPeerID(f"an Ed25519 peer ID is {PEER_ID_BYTES} bytes, got {len(raw)}")
    if not raw.startswith(PEER_ID_PREFIX):
        raise InvalidPeerID(
            f"not an identity-multihash Ed25519 key (prefix {raw[:6].hex()}, "
            f"expected {PEER_ID_PREFIX.hex()})"
        )


class Identity:
    """A peer's Ed25519 key pair; immutable once made."""

    __slots__ = ("_peer_id", "_private", "_public")

    _private: Ed25519PrivateKey
    _public: bytes
    _peer_id: str

    def __init__(self, private_key: Ed25519PrivateKey) -> None:
        pub = private_key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
        object.__setattr__(self, "_private", private_key)
        object.__setattr__(self, "_public", pub)
        object.__setattr__(self, "_peer_id", peer_id_from_public_key(pub))

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError("Identity is immutable")

    @classmethod
    def generate(cls) -> Identity:
        """A fresh random identity."""
        return cls(Ed25519PrivateKey.generate())

    @classmethod
    def from_private_bytes(cls, b: bytes) -> Identity:
        """The identity of a 32-byte raw Ed25519 private seed."""
        if len(b) != KEY_BYTES:
            raise ValueError(f"an Ed25519 private seed is {KEY_BYTES} bytes, got {len(b)}")
        return cls(Ed25519PrivateKey.from_private_bytes(bytes(b)))

    @classmethod
    def load_or_create(cls, path: Path) -> Identity:
        """Load the seed at ``path``, or create it (mode 0600) if it does not exist."""
        path = Path(path)
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            _write_new_key(path, cls.generate().private_bytes())
        seed = path.read_bytes()
        if len(seed) != KEY_BYTES:
            raise InvalidIdentityFile(
                f"identity key file {path} is corrupt: expected a {KEY_BYTES}-byte raw "
                f"Ed25519 seed, found {len(seed)} bytes (move it away to make a new identity)"
            )
        return cls.from_private_bytes(seed)

    @property
    def peer_id(self) -> str:
        return self._peer_id

    @property
    def public_key(self) -> bytes:
        """The raw 32-byte Ed25519 public key."""
        return self._public

    @property
    def peer_id_bytes(self) -> bytes:
        """The 38 multihash bytes of the peer ID."""
        return PEER_ID_PREFIX + self._public

    def private_bytes(self) -> bytes:
        """The 32-byte raw private seed (keep it secret)."""
        return self._private.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())

    def sign(self, data: bytes) -> bytes:
        """The 64-byte Ed25519 signature over ``data``."""
        return self._private.sign(bytes(data))

    def __repr__(self) -> str:
        return f"Identity({self._peer_id})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Identity) and other._peer_id == self._peer_id

    def __hash__(self) -> int:
        return hash(self._peer_id)


def _write_new_key(path: Path, seed: bytes) -> None:
    # Write to a private temp file, then hard-link it into place: the key is
    # never visible half-written, and if two processes race the first one wins
    # and the other reads its key instead of overwriting it.
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(seed)
            f.flush()
            os.fsync(f.fileno())
        try:
            os.link(tmp, path)
        except FileExistsError:
            pass
    finally:
        tmp.unlink(missing_ok=True)
