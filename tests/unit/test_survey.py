"""Gradual survey rules: whom a survey reaches, and how the distance grows."""

from __future__ import annotations

import base58
import pytest
from hypothesis import given
from hypothesis import strategies as st

from cluster_app.identity import Identity, InvalidPeerID
from cluster_app.survey import (
    first_distance,
    next_distance,
    should_answer,
    xor_tail,
)

# Peer IDs of the seeds 32 x 0x00 and 32 x 0x02; their multihashes end in
# 8b59da29 and 8fc9b394, whose XOR is 0x049069bd (highest set bit: 26).
PEER_A = "12D3KooWDpJ7As7BWAwRMfu1VU2WCqNjvq387JEYKDBj4kx6nXTN"
PEER_B = "12D3KooWJWoaqZhDaoEFshF7Rh1bpY9ohihFhzcW6d69Lr2NASuq"
XOR_AB = 0x049069BD


def test_fixture_peer_ids_are_what_the_comment_says() -> None:
    assert Identity.from_private_bytes(bytes(32)).peer_id == PEER_A
    assert Identity.from_private_bytes(bytes([2]) * 32).peer_id == PEER_B
    assert base58.b58decode(PEER_A)[-4:] == bytes.fromhex("8b59da29")
    assert base58.b58decode(PEER_B)[-4:] == bytes.fromhex("8fc9b394")
    assert xor_tail(PEER_A, PEER_B) == XOR_AB == 0x8B59DA29 ^ 0x8FC9B394


def test_xor_shift_rule_with_concrete_peer_ids() -> None:
    # (0x049069bd >> d) == 0 first holds at d = 27.
    for d in range(27):
        assert not should_answer(PEER_A, PEER_B, d), d
    for d in range(27, 256):
        assert should_answer(PEER_A, PEER_B, d), d


def test_rule_is_symmetric_and_a_peer_is_always_within_reach_of_itself() -> None:
    for d in (0, 5, 26, 27, 255):
        assert should_answer(PEER_A, PEER_B, d) == should_answer(PEER_B, PEER_A, d)
    assert should_answer(PEER_A, PEER_A, 0)


peer_ids = st.binary(min_size=32, max_size=32).map(
    lambda seed: Identity.from_private_bytes(seed).peer_id
)


@given(peer_ids, peer_ids, st.integers(32, 255))
def test_distance_32_or_more_always_answers(a: str, b: str, distance: int) -> None:
    assert should_answer(a, b, distance)


@given(peer_ids, peer_ids, st.integers(0, 255))
def test_should_answer_matches_the_spec_formula(a: str, b: str, distance: int) -> None:
    tail = int.from_bytes(base58.b58decode(a)[-4:], "big") ^ int.from_bytes(
        base58.b58decode(b)[-4:], "big"
    )
    assert should_answer(a, b, distance) == (tail >> distance == 0)


def test_first_distance_with_concrete_peer_ids() -> None:
    assert first_distance(PEER_A, PEER_B) == 27
    assert first_distance(PEER_A, None) == 0
    assert first_distance(PEER_A, PEER_A) == 0


@given(peer_ids, peer_ids)
def test_first_distance_is_the_smallest_at_which_target_answers(own: str, target: str) -> None:
    d = first_distance(own, target)
    assert 0 <= d <= 32
    assert should_answer(own, target, d)
    if d > 0:
        assert not should_answer(own, target, d - 1)


def test_next_distance_raises_by_step_and_wraps_at_255() -> None:
    assert next_distance(0, 8) == 8
    assert next_distance(248, 8) == 0
    assert next_distance(250, 8) == 2
    assert next_distance(255, 1) == 0
    assert next_distance(255, 0) == 255


@given(st.integers(0, 255), st.integers(0, 1000))
def test_next_distance_is_uint8_addition(d: int, step: int) -> None:
    assert next_distance(d, step) == (d + step) % 256


def test_distances_wrap_at_255() -> None:
    distances = [240]
    for _ in range(4):
        distances.append(next_distance(distances[-1], 8))
    assert distances == [240, 248, 0, 8, 16]


@pytest.mark.parametrize("bad", [-1, 256, 1000])
def test_out_of_range_distance_is_refused(bad: int) -> None:
    with pytest.raises(ValueError):
        should_answer(PEER_A, PEER_B, bad)
    with pytest.raises(ValueError):
        next_distance(bad, 1)


def test_malformed_peer_ids_are_refused() -> None:
    with pytest.raises(InvalidPeerID):
        should_answer("nope", PEER_B, 3)
    with pytest.raises(InvalidPeerID):
        first_distance(PEER_A, "12D3KooWnope")
