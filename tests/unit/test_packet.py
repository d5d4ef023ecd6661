"""Boot packet codec: encode, sign, decode, verify; golden packets; garbage."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import schema
from cluster_app.identity import Identity
from cluster_app.packet import (
    MAX_ADDRS,
    MAX_PACKET_BYTES,
    SIGNATURE_DOMAIN,
    Packet,
    PacketError,
    Request,
    Response,
    Survey,
    decode,
    encode,
    packet_type,
)

GOLDEN = Path(__file__).parent / "golden"
# Set WW_UPDATE_GOLDEN=1 to rewrite the golden files after a deliberate format change.
UPDATE_GOLDEN = os.environ.get("WW_UPDATE_GOLDEN") == "1"

SENDER = Identity.from_private_bytes(bytes(range(32)))
OTHER = Identity.from_private_bytes(bytes(range(32, 64)))
STAMP = 1_700_000_000_000

PACKETS = {
    "request": Packet("ww", Request(SENDER.peer_id), STAMP),
    "survey": Packet("ww", Survey(SENDER.peer_id, 255), STAMP),
    "response": Packet(
        "ww", Response(SENDER.peer_id, ("/ip4/127.0.0.1/tcp/4001", "/ip4/10.0.0.2/tcp/4001")), STAMP
    ),
}


def envelope(payload: bytes, signature: bytes) -> bytes:
    """A datagram with the given payload and signature, however wrong they are."""
    return schema.boot.Envelope.new_message(payload=payload, signature=signature).to_bytes_packed()


def split(data: bytes) -> tuple[bytes, bytes]:
    env = schema.boot.Envelope.from_bytes_packed(data)
    return bytes(env.payload), bytes(env.signature)


def signed(payload: bytes, identity: Identity = SENDER) -> bytes:
    return envelope(payload, identity.sign(SIGNATURE_DOMAIN + payload))


@pytest.mark.parametrize("kind", sorted(PACKETS))
def test_round_trip_each_kind(kind: str) -> None:
    packet = PACKETS[kind]
    data = encode(packet, SENDER)
    assert decode(data) == packet
    assert packet_type(decode(data)) == kind
    assert len(data) <= MAX_PACKET_BYTES


@pytest.mark.parametrize("kind", sorted(PACKETS))
def test_encoding_matches_golden_packet(kind: str) -> None:
    path = GOLDEN / f"{kind}.bin"
    data = encode(PACKETS[kind], SENDER)
    if UPDATE_GOLDEN:
        path.write_bytes(data)
    golden = path.read_bytes()
    assert data == golden  # Ed25519 is deterministic, packed capnp is canonical
    assert decode(golden) == PACKETS[kind]


def test_packet_is_signed_over_domain_and_payload() -> None:
    payload, signature = split(encode(PACKETS["survey"], SENDER))
    assert signature == SENDER.sign(SIGNATURE_DOMAIN + payload)
    assert signature != SENDER.sign(payload)


def test_encode_refuses_a_body_of_another_peer() -> None:
    with pytest.raises(ValueError, match="not the signer"):
        encode(Packet("ww", Survey(OTHER.peer_id, 1), STAMP), SENDER)


@pytest.mark.parametrize(
    "packet",
    [
        Packet("ww", Survey(SENDER.peer_id, 256), STAMP),
        Packet("ww", Survey(SENDER.peer_id, -1), STAMP),
        Packet("ww", Request(SENDER.peer_id), -1),
        Packet("ww", Request(SENDER.peer_id), 2**64),
        Packet("n" * 256, Request(SENDER.peer_id), STAMP),
        Packet("w\x00w", Request(SENDER.peer_id), STAMP),
        Packet("ww", Response(SENDER.peer_id, ("/ip4/127.0.0.1/tcp/1",) * (MAX_ADDRS + 1)), 1),
        Packet("ww", Response(SENDER.peer_id, ("a" * 300,)), STAMP),
    ],
)
def test_encode_refuses_what_decode_would_reject(packet: Packet) -> None:
    with pytest.raises(ValueError):
        encode(packet, SENDER)


@pytest.mark.parametrize("kind", sorted(PACKETS))
def test_any_flipped_payload_byte_is_rejected(kind: str) -> None:
    payload, signature = split(encode(PACKETS[kind], SENDER))
    for i in range(len(payload)):
        tampered = bytearray(payload)
        tampered[i] ^= 0x01
        with pytest.raises(PacketError):
            decode(envelope(bytes(tampered), signature))


def test_any_flipped_signature_byte_is_rejected() -> None:
    payload, signature = split(encode(PACKETS["survey"], SENDER))
    for i in range(len(signature)):
        tampered = bytearray(signature)
        tampered[i] ^= 0x80
        with pytest.raises(PacketError, match="bad signature"):
            decode(envelope(payload, bytes(tampered)))


def test_short_or_missing_signature_is_rejected() -> None:
    payload, signature = split(encode(PACKETS["survey"], SENDER))
    for bad in (b"", signature[:-1], signature + b"\x00"):
        with pytest.raises(PacketError, match="signature"):
            decode(envelope(payload, bad))


def test_swapping_in_another_valid_peer_id_is_rejected() -> None:
    payload, signature = split(encode(PACKETS["survey"], SENDER))
    msg = schema.boot.Packet.from_bytes_packed(payload).as_builder()
    setattr(msg.survey, "from", OTHER.peer_id_bytes)
    with pytest.raises(PacketError, match="bad signature"):
        decode(envelope(msg.to_bytes_packed(), signature))


def test_packet_signed_by_someone_else_is_rejected() -> None:
    payload, _ = split(encode(PACKETS["response"], SENDER))
    with pytest.raises(PacketError, match="bad signature"):
        decode(signed(payload, OTHER))


def test_malformed_peer_id_in_body_is_rejected() -> None:
    msg = schema.boot.Packet.new_message(namespace="ww", stamp=STAMP)
    setattr(msg.init("request"), "from", b"\x00\x24\x08\x02\x12\x20" + bytes(32))
    with pytest.raises(PacketError, match="bad peer ID"):
        decode(signed(msg.to_bytes_packed()))


def test_too_many_addrs_are_rejected_even_when_signed() -> None:
    msg = schema.boot.Packet.new_message(namespace="ww", stamp=STAMP)
    response = msg.init("response")
    response.peer = SENDER.peer_id_bytes
    addrs = response.init("addrs", MAX_ADDRS + 1)
    for i in range(MAX_ADDRS + 1):
        addrs[i] = "/ip4/127.0.0.1/tcp/1"
    with pytest.raises(PacketError, match="too many addrs"):
        decode(signed(msg.to_bytes_packed()))


def test_empty_union_and_empty_payload_are_rejected() -> None:
    # A fresh Packet's union defaults to `request` with an empty peer ID.
    empty = schema.boot.Packet.new_message(namespace="ww").to_bytes_packed()
    with pytest.raises(PacketError, match="bad peer ID"):
        decode(signed(empty))
    with pytest.raises(PacketError, match="empty payload"):
        decode(signed(b""))


def test_oversized_datagram_is_rejected() -> None:
    data = encode(PACKETS["survey"], SENDER)
    with pytest.raises(PacketError, match="oversized"):
        decode(data + bytes(MAX_PACKET_BYTES))


@pytest.mark.parametrize("garbage", [b"", b"\x00", b"\xff" * 64, b"hello world", bytes(8)])
def test_garbage_raises_packet_error(garbage: bytes) -> None:
    with pytest.raises(PacketError):
        decode(garbage)


@pytest.mark.parametrize("kind", sorted(PACKETS))
def test_every_truncation_raises_packet_error(kind: str) -> None:
    data = encode(PACKETS[kind], SENDER)
    for n in range(len(data)):
        with pytest.raises(PacketError):
            decode(data[:n])


def test_decode_rejects_non_bytes() -> None:
    with pytest.raises(PacketError):
        decode("text")  # type: ignore[arg-type]


@settings(suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=600))
def test_decode_of_arbitrary_bytes_raises_only_packet_error(data: bytes) -> None:
    try:
        decode(data)
    except PacketError:
        pass


@given(
    kind=st.sampled_from(sorted(PACKETS)),
    flips=st.lists(st.tuples(st.integers(0, 400), st.integers(1, 255)), min_size=1, max_size=4),
)
def test_mutated_packets_are_rejected_or_decode_to_the_original(
    kind: str, flips: list[tuple[int, int]]
) -> None:
    data = bytearray(encode(PACKETS[kind], SENDER))
    for pos, mask in flips:
        data[pos % len(data)] ^= mask
    try:
        packet = decode(bytes(data))
    except PacketError:
        return
    # Only the envelope's framing can change harmlessly; the signed payload cannot.
    assert packet == PACKETS[kind]


_TEXT = st.text(
    alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"),
    max_size=40,
)


@st.composite
def packets(draw: st.DrawFn) -> Packet:
    kind = draw(st.sampled_from(["request", "survey", "response"]))
    body: Request | Survey | Response
    if kind == "request":
        body = Request(SENDER.peer_id)
    elif kind == "survey":
        body = Survey(SENDER.peer_id, draw(st.integers(0, 255)))
    else:
        body = Response(SENDER.peer_id, tuple(draw(st.lists(_TEXT, max_size=MAX_ADDRS))))
    return Packet(draw(_TEXT), body, draw(st.integers(0, 2**64 - 1)))


@given(packets())
def test_encode_decode_round_trip(packet: Packet) -> None:
    assert decode(encode(packet, SENDER)) == packet


def test_errors_are_sorted_by_kind_for_the_counters() -> None:
    payload, signature = split(encode(PACKETS["survey"], SENDER))
    cases = {
        "malformed": b"hello world",
        "bad-signature": signed(payload, OTHER),
        "bad-peer-id": signed(
            _request_from(b"\x00\x24\x08\x02\x12\x20" + bytes(32)).to_bytes_packed()
        ),
    }
    for kind, data in cases.items():
        with pytest.raises(PacketError) as info:
            decode(data)
        assert info.value.kind == kind, (kind, str(info.value))
    with pytest.raises(PacketError) as info:
        decode(envelope(payload, signature[:10]))
    assert info.value.kind == "bad-signature"


def _request_from(peer: bytes):
    msg = schema.boot.Packet.new_message(namespace="ww", stamp=STAMP)
    setattr(msg.init("request"), "from", peer)
    return msg


@settings(suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=400))
def test_correctly_signed_arbitrary_payloads_raise_only_packet_error(payload: bytes) -> None:
    # Signed by the sender, so the envelope is fine and the payload decoder
    # sees the bytes: it must refuse them with the codec's own error or
    # produce a packet that re-encodes.
    try:
        packet = decode(signed(payload))
    except PacketError:
        return
    assert packet.body.peer == SENDER.peer_id
    assert decode(encode(packet, SENDER)) == packet
