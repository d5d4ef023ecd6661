"""Replay protection: the freshness window, per-peer newest stamps, bounded
memory, and the discovery gate that counts every drop by reason."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from cluster_app.discovery import DiscoveryStats, admit
from cluster_app.identity import Identity
from cluster_app.packet import Packet, Request, Survey, encode, next_stamp_ms, now_ms
from cluster_app.replay import (
    DEFAULT_WINDOW_MS,
    ReplayGuard,
    StampClock,
    check_window,
)

NOW = 1_700_000_000_000
PEER = Identity.from_private_bytes(bytes(range(32)))
OTHER = Identity.from_private_bytes(bytes(range(32, 64)))
SENDER = ("127.0.0.1", 8822)


def test_default_window_is_thirty_seconds() -> None:
    assert DEFAULT_WINDOW_MS == 30_000


def test_window_edges_are_inclusive() -> None:
    assert check_window("p", NOW - 30_000, NOW, 30_000) is None
    assert check_window("p", NOW + 30_000, NOW, 30_000) is None
    stale = check_window("p", NOW - 30_001, NOW, 30_000)
    future = check_window("p", NOW + 30_001, NOW, 30_000)
    assert stale is not None and stale.reason == "stale"
    assert future is not None and future.reason == "future"


def test_stale_and_future_packets_are_refused_and_not_remembered() -> None:
    guard = ReplayGuard(window_ms=30_000)
    stale = guard.check("p", NOW - 45_000, NOW)
    assert stale is not None
    assert str(stale) == (
        "stale packet (stamp 1699999955000 is 45.0 s behind local clock, window ±30 s) from p"
    )
    future = guard.check("p", NOW + 90_000, NOW)
    assert future is not None
    assert str(future) == (
        "future packet (stamp 1700000090000 is 90.0 s ahead of local clock, window ±30 s) from p"
    )
    assert guard.last_stamp("p") is None  # a refused stamp must not raise the bar


def test_same_or_older_stamp_from_a_peer_is_a_replay() -> None:
    guard = ReplayGuard()
    assert guard.check("p", NOW, NOW) is None
    again = guard.check("p", NOW, NOW + 5)
    assert again is not None and again.reason == "replayed"
    assert str(again) == f"replayed packet (stamp {NOW} not newer than {NOW}) from p"
    older = guard.check("p", NOW - 1, NOW + 5)
    assert older is not None and older.reason == "replayed"
    assert guard.check("p", NOW + 1, NOW + 5) is None
    assert guard.last_stamp("p") == NOW + 1


def test_peers_are_tracked_independently() -> None:
    guard = ReplayGuard()
    assert guard.check("a", NOW, NOW) is None
    assert guard.check("b", NOW - 10, NOW) is None  # older than a's, but b is another peer
    assert guard.check("b", NOW - 10, NOW) is not None


def test_memory_is_bounded_and_forgets_the_least_recently_heard() -> None:
    guard = ReplayGuard(max_peers=3)
    for i, peer in enumerate("abcd"):
        assert guard.check(peer, NOW + i, NOW) is None
    assert len(guard) == 3
    assert guard.last_stamp("a") is None  # evicted first
    assert guard.last_stamp("d") == NOW + 3
    # Touching b keeps it; the next new peer evicts c instead.
    assert guard.check("b", NOW + 10, NOW) is None
    assert guard.check("e", NOW, NOW) is None
    assert guard.last_stamp("c") is None
    assert guard.last_stamp("b") == NOW + 10


@given(
    stamps=st.lists(st.integers(NOW - 60_000, NOW + 60_000), max_size=40),
)
def test_accepted_stamps_of_a_peer_strictly_increase_and_stay_in_the_window(
    stamps: list[int],
) -> None:
    guard = ReplayGuard()
    accepted = [s for s in stamps if guard.check("p", s, NOW) is None]
    assert accepted == sorted(set(accepted))
    assert all(abs(s - NOW) <= DEFAULT_WINDOW_MS for s in accepted)


def test_stamp_clock_is_strictly_increasing_even_when_the_clock_is_not() -> None:
    clock = StampClock()
    stamps = [clock.next(t) for t in (NOW, NOW, NOW - 500, NOW + 10, NOW + 10)]
    assert stamps == [NOW, NOW + 1, NOW + 2, NOW + 10, NOW + 11]


def test_packets_from_one_process_never_share_a_stamp() -> None:
    stamps = [next_stamp_ms() for _ in range(1000)]
    assert stamps == sorted(set(stamps))
    assert abs(stamps[0] - now_ms()) < 5_000
    a, b = Packet("ww", Request(PEER.peer_id)), Packet("ww", Request(PEER.peer_id))
    assert a.stamp_ms < b.stamp_ms


def _admit(data: bytes, stats: DiscoveryStats, guard: ReplayGuard, own: str = OTHER.peer_id):
    return admit(data, SENDER, namespace="ww", own=own, replay=guard, stats=stats)


def test_gate_drops_and_counts_each_bad_kind_by_reason() -> None:
    stats, guard = DiscoveryStats(), ReplayGuard()
    fresh = encode(Packet("ww", Survey(PEER.peer_id, 3)), PEER)
    assert _admit(fresh, stats, guard) is not None
    assert _admit(fresh, stats, guard) is None  # the very same datagram again
    stale = encode(Packet("ww", Request(PEER.peer_id), now_ms() - 120_000), PEER)
    assert _admit(stale, stats, guard) is None
    future = encode(Packet("ww", Request(PEER.peer_id), now_ms() + 120_000), PEER)
    assert _admit(future, stats, guard) is None
    assert _admit(b"garbage", stats, guard) is None
    tampered = bytearray(encode(Packet("ww", Request(PEER.peer_id)), PEER))
    tampered[-1] ^= 0x01  # inside the signature
    assert _admit(bytes(tampered), stats, guard) is None
    elsewhere = encode(Packet("other", Request(PEER.peer_id)), PEER)
    assert _admit(elsewhere, stats, guard) is None
    own = encode(Packet("ww", Request(OTHER.peer_id)), OTHER)
    assert _admit(own, stats, guard) is None

    assert stats.received == 8
    assert stats.invalid == 5
    assert stats.ignored == 2
    assert dict(stats.reasons) == {
        "replayed": 1,
        "stale": 1,
        "future": 1,
        "malformed": 1,
        "bad-signature": 1,
        "other-namespace": 1,
        "own": 1,
    }


def test_gate_passes_a_fresh_packet_unchanged() -> None:
    stats, guard = DiscoveryStats(), ReplayGuard()
    packet = Packet("ww", Survey(PEER.peer_id, 7))
    assert _admit(encode(packet, PEER), stats, guard) == packet
    assert (stats.received, stats.invalid, stats.ignored) == (1, 0, 0)
    assert guard.last_stamp(PEER.peer_id) == packet.stamp_ms
