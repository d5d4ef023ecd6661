"""Gradual survey: whom to answer, and how a requester widens its survey.

A peer answers a survey only when the last 4 bytes of the requester's peer ID
XOR the last 4 bytes of its own, shifted right by the survey's distance, is
zero. A small distance therefore reaches few peers, and 32 or more reaches
everyone. The requester starts narrow and raises the distance (uint8, so it
wraps at 255) until it has heard what it needs. Pure: no I/O, no Django.
"""

from __future__ import annotations

from cluster_app.identity import peer_id_bytes

MAX_DISTANCE = 255


def _tail(peer_id: str) -> int:
    return int.from_bytes(peer_id_bytes(peer_id)[-4:], "big")


def xor_tail(a: str, b: str) -> int:
    """The XOR of the last 4 bytes (big-endian uint32) of two peer IDs."""
    return _tail(a) ^ _tail(b)


def _check_distance(distance: int) -> None:
    if not isinstance(distance, int) or not 0 <= distance <= MAX_DISTANCE:
        raise ValueError(f"survey distance is a uint8 (0..255), got {distance!r}")


def should_answer(requester: str, own: str, distance: int) -> bool:
    """Whether the peer ``own`` answers a survey from ``requester`` at ``distance``."""
    _check_distance(distance)
    return xor_tail(requester, own) >> distance == 0


def first_distance(own: str, target: str | None) -> int:
    """The smallest distance at which ``target`` answers ``own`` (0 with no target)."""
    if target is None:
        return 0
    return xor_tail(own, target).bit_length()


def next_distance(d: int, step: int) -> int:
    """The distance after ``d``: raised by ``step``, wrapping like a uint8."""
    _check_distance(d)
    if not isinstance(step, int) or step < 0:
        raise ValueError(f"survey step must be a non-negative int, got {step!r}")
    return (d + step) % (MAX_DISTANCE + 1)
