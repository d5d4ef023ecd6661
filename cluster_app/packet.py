"""Boot packets: encode, sign, decode and verify. Pure: no sockets, no Django.

On the wire a datagram is a packed ``Envelope`` (schema/boot.capnp) holding a
packed ``Packet`` and the sender's Ed25519 signature over
``SIGNATURE_DOMAIN + payload``. The key that must have signed is the one inside
the peer ID carried in the packet's body, so a packet proves who sent it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Literal

import schema
from cluster_app.identity import (
    Identity,
    InvalidPeerID,
    peer_id_bytes,
    peer_id_from_bytes,
    verify,
)
from cluster_app.replay import StampClock

SIGNATURE_DOMAIN = b"ww-boot-packet:"
SIGNATURE_BYTES = 64
MAX_PACKET_BYTES = 8 * 1024
MAX_NAMESPACE_BYTES = 255
MAX_ADDRS = 32
MAX_ADDR_BYTES = 256
_MAX_STAMP = 2**64 - 1
# A packed message may expand a lot; these bound what capnp will allocate and
# walk for one datagram (the 8 KiB cap alone does not).
_TRAVERSAL_LIMIT_WORDS = 4 * MAX_PACKET_BYTES // 8
_NESTING_LIMIT = 8

PacketType = Literal["request", "survey", "response"]


PacketErrorKind = Literal["malformed", "bad-signature", "bad-peer-id"]


class PacketError(ValueError):
    """A datagram that is not a valid, correctly signed boot packet.

    ``kind`` sorts the failures for counters: ``malformed`` (not a boot packet,
    or over a limit), ``bad-signature`` (not signed by the key in its peer ID),
    ``bad-peer-id`` (the peer ID itself does not parse).
    """

    def __init__(self, message: str, kind: PacketErrorKind = "malformed") -> None:
        super().__init__(message)
        self.kind: PacketErrorKind = kind


@dataclass(frozen=True)
class Request:
    """Ask every peer in the namespace to answer."""

    peer: str


@dataclass(frozen=True)
class Survey:
    """Ask the peers within ``distance`` of ``peer`` to answer."""

    peer: str
    distance: int


@dataclass(frozen=True)
class Response:
    """A peer announcing the multiaddrs it can be dialled on."""

    peer: str
    addrs: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "addrs", tuple(self.addrs))


Body = Request | Survey | Response


def now_ms() -> int:
    """Wall-clock milliseconds since the epoch."""
    return time.time_ns() // 1_000_000


_STAMPS = StampClock()


def next_stamp_ms() -> int:
    """Wall-clock milliseconds, strictly increasing within this process.

    Receivers drop a packet whose stamp is not newer than the last one they
    accepted from its sender (cluster_app.replay), so no two packets this
    process sends may share a stamp.
    """
    return _STAMPS.next(now_ms())


@dataclass(frozen=True)
class Packet:
    """One boot packet: a namespace, a body and the sender's clock."""

    namespace: str
    body: Body
    stamp_ms: int = field(default_factory=next_stamp_ms)


def packet_type(packet: Packet) -> PacketType:
    """``"request"``, ``"survey"`` or ``"response"``."""
    body = packet.body
    if isinstance(body, Survey):
        return "survey"
    if isinstance(body, Response):
        return "response"
    if isinstance(body, Request):
        return "request"
    raise TypeError(f"not a packet body: {body!r}")


def encode(packet: Packet, identity: Identity) -> bytes:
    """The signed datagram for ``packet``; its body's peer must be ``identity``."""
    body = packet.body
    if body.peer != identity.peer_id:
        raise ValueError(f"packet peer {body.peer} is not the signer {identity.peer_id}")
    _check_text("namespace", packet.namespace, MAX_NAMESPACE_BYTES)
    if not isinstance(packet.stamp_ms, int) or not 0 <= packet.stamp_ms <= _MAX_STAMP:
        raise ValueError(f"stamp_ms must be a uint64, got {packet.stamp_ms!r}")

    msg = schema.boot.Packet.new_message(namespace=packet.namespace, stamp=packet.stamp_ms)
    peer = peer_id_bytes(body.peer)
    if isinstance(body, Survey):
        if not isinstance(body.distance, int) or not 0 <= body.distance <= 255:
            raise ValueError(f"survey distance must be 0..255, got {body.distance!r}")
        survey = msg.init("survey")
        setattr(survey, "from", peer)
        survey.distance = body.distance
    elif isinstance(body, Response):
        if len(body.addrs) > MAX_ADDRS:
            raise ValueError(f"at most {MAX_ADDRS} addrs fit a packet, got {len(body.addrs)}")
        for addr in body.addrs:
            _check_text("addr", addr, MAX_ADDR_BYTES)
        response = msg.init("response")
        response.peer = peer
        addrs = response.init("addrs", len(body.addrs))
        for i, addr in enumerate(body.addrs):
            addrs[i] = addr
    elif isinstance(body, Request):
        setattr(msg.init("request"), "from", peer)
    else:
        raise TypeError(f"not a packet body: {body!r}")

    payload = msg.to_bytes_packed()
    signature = identity.sign(SIGNATURE_DOMAIN + payload)
    envelope = schema.boot.Envelope.new_message(payload=payload, signature=signature)
    data = envelope.to_bytes_packed()
    if len(data) > MAX_PACKET_BYTES:
        raise ValueError(f"packet is {len(data)} bytes, over the {MAX_PACKET_BYTES} limit")
    return data


def decode(data: bytes) -> Packet:
    """The verified packet in ``data``; raises PacketError (only) if it is not one."""
    if not isinstance(data, bytes | bytearray | memoryview):
        raise PacketError(f"expected bytes, got {type(data).__name__}")
    data = bytes(data)
    if not data:
        raise PacketError("empty datagram")
    if len(data) > MAX_PACKET_BYTES:
        raise PacketError(f"oversized: {len(data)} bytes, limit {MAX_PACKET_BYTES}")
    try:
        envelope = schema.boot.Envelope.from_bytes_packed(
            data, traversal_limit_in_words=_TRAVERSAL_LIMIT_WORDS, nesting_limit=_NESTING_LIMIT
        )
        payload = bytes(envelope.payload)
        signature = bytes(envelope.signature)
    except Exception as exc:  # noqa: BLE001 - capnp raises KjException & co. on garbage
        raise PacketError(f"not a boot envelope: {_reason(exc)}") from None
    if len(signature) != SIGNATURE_BYTES:
        raise PacketError(
            f"signature is {len(signature)} bytes, expected {SIGNATURE_BYTES}", "bad-signature"
        )
    if not payload:
        raise PacketError("empty payload")

    packet = _decode_payload(payload)
    if not verify(packet.body.peer, SIGNATURE_DOMAIN + payload, signature):
        raise PacketError(f"bad signature for peer {packet.body.peer}", "bad-signature")
    return packet


def _decode_payload(payload: bytes) -> Packet:
    try:
        msg = schema.boot.Packet.from_bytes_packed(
            payload, traversal_limit_in_words=_TRAVERSAL_LIMIT_WORDS, nesting_limit=_NESTING_LIMIT
        )
        namespace = msg.namespace
        stamp = int(msg.stamp)
        kind = str(msg.which())
        body: Body
        if kind == "survey":
            body = Survey(peer=_peer(getattr(msg.survey, "from")), distance=msg.survey.distance)
        elif kind == "response":
            addrs = msg.response.addrs
            if len(addrs) > MAX_ADDRS:
                raise PacketError(f"too many addrs: {len(addrs)}, limit {MAX_ADDRS}")
            body = Response(peer=_peer(msg.response.peer), addrs=tuple(addrs))
        elif kind == "request":
            body = Request(peer=_peer(getattr(msg.request, "from")))
        else:
            raise PacketError(f"unknown packet type {kind!r}")
    except PacketError:
        raise
    except Exception as exc:  # noqa: BLE001 - any failure to read garbage is a bad packet
        raise PacketError(f"not a boot packet: {_reason(exc)}") from None
    try:
        _check_text("namespace", namespace, MAX_NAMESPACE_BYTES)
        if isinstance(body, Response):
            for addr in body.addrs:
                _check_text("addr", addr, MAX_ADDR_BYTES)
    except (ValueError, TypeError) as exc:
        raise PacketError(str(exc)) from None
    return Packet(namespace=namespace, body=body, stamp_ms=stamp)


def _peer(raw: bytes) -> str:
    try:
        return peer_id_from_bytes(bytes(raw))
    except InvalidPeerID as exc:
        raise PacketError(f"bad peer ID: {exc}", "bad-peer-id") from None


def _check_text(what: str, text: object, limit: int) -> None:
    if not isinstance(text, str):
        raise TypeError(f"{what} must be text, got {type(text).__name__}")
    try:
        size = len(text.encode("utf-8"))
    except UnicodeEncodeError:
        raise ValueError(f"{what} is not valid UTF-8 text: {text[:40]!r}") from None
    if size > limit:
        raise ValueError(f"{what} is {size} bytes, limit {limit}")
    if "\x00" in text:
        raise ValueError(f"{what} contains a NUL character")


def _reason(exc: BaseException) -> str:
    # KjException text carries a native stack trace; keep the human part only.
    text = str(getattr(exc, "description", None) or exc or type(exc).__name__)
    text = text.split("\nstack:")[0].strip().splitlines()[0]
    # "expected n >= minBytes [0 >= 8]; Premature EOF": the part after ";" is the reason.
    if text.startswith("expected ") and "; " in text:
        text = text.split("; ", 1)[1]
    return text[:200]
