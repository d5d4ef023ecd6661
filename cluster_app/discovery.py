"""Discovery over UDP multicast: answer surveys, and survey to find a peer.

The protocol on top of the multicast socket (cluster_app.multicast), the packet
codec (cluster_app.packet) and the survey rules (cluster_app.survey). Every
datagram passes the same gate before the protocol sees it: it must decode and
verify, be in our namespace, come from another peer, and be fresh (within the
replay window and newer than the last packet of its sender,
cluster_app.replay). What fails is dropped and counted in DiscoveryStats.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

from cluster_app.identity import Identity, InvalidPeerID, public_key_from_peer_id
from cluster_app.multiaddr import Multiaddr
from cluster_app.multicast import Address, MulticastSocket
from cluster_app.packet import (
    Packet,
    PacketError,
    Request,
    Response,
    Survey,
    decode,
    encode,
    now_ms,
)
from cluster_app.replay import ReplayGuard
from cluster_app.survey import first_distance, next_distance, should_answer

logger = logging.getLogger("ww.discovery")


@dataclass
class DiscoveryStats:
    """Counters for one discovery loop (serve_surveys or find_peer).

    ``invalid`` counts dropped datagrams (malformed, badly signed, stale, from
    the future, replayed); ``ignored`` counts valid packets that are not for us
    (another namespace, or our own looped back). ``reasons`` splits both by
    reason: ``malformed``, ``bad-signature``, ``bad-peer-id``, ``stale``,
    ``future``, ``replayed``, ``other-namespace``, ``own``.
    """

    received: int = 0
    invalid: int = 0
    ignored: int = 0
    answered: int = 0
    reasons: Counter[str] = field(default_factory=Counter)

    def count_invalid(self, reason: str) -> None:
        self.invalid += 1
        self.reasons[reason] += 1

    def count_ignored(self, reason: str) -> None:
        self.ignored += 1
        self.reasons[reason] += 1


async def serve_surveys(
    *,
    identity: Identity,
    namespace: str,
    group: Multiaddr,
    addrs: Callable[[], list[str]],
    stats: DiscoveryStats | None = None,
    replay: ReplayGuard | None = None,
) -> None:
    """Answer surveys and requests in ``namespace`` with our addrs, until cancelled."""
    stats = stats if stats is not None else DiscoveryStats()
    replay = replay if replay is not None else ReplayGuard()
    own = identity.peer_id
    async with MulticastSocket(group) as sock:
        logger.info("answering surveys for %s in namespace %r on %s", own, namespace, group)
        while True:
            data, sender = await sock.recv()
            packet = admit(data, sender, namespace=namespace, own=own, replay=replay, stats=stats)
            if packet is None:
                continue
            if _wants_answer(packet, own) and _answer(
                sock, identity, namespace, addrs, requester=packet.body.peer
            ):
                stats.answered += 1


def _wants_answer(packet: Packet, own: str) -> bool:
    body = packet.body
    if isinstance(body, Request):
        return True
    if isinstance(body, Survey):
        return should_answer(body.peer, own, body.distance)
    return False


def _answer(
    sock: MulticastSocket,
    identity: Identity,
    namespace: str,
    addrs: Callable[[], list[str]],
    *,
    requester: str,
) -> bool:
    try:
        data = encode(Packet(namespace, Response(identity.peer_id, tuple(addrs()))), identity)
        sock.send(data)
    except (ValueError, OSError) as exc:
        # Our own addrs do not fit a packet, or the send failed: say so and go on.
        logger.warning("cannot answer survey from %s: %s", requester, exc)
        return False
    logger.debug("answered %s with our addrs", requester)
    return True


def admit(
    data: bytes,
    sender: Address,
    *,
    namespace: str,
    own: str,
    replay: ReplayGuard,
    stats: DiscoveryStats,
) -> Packet | None:
    """The packet in ``data`` if it is valid, fresh and for us; else None, counted."""
    stats.received += 1
    try:
        packet = decode(data)
    except PacketError as exc:
        stats.count_invalid(exc.kind)
        # DEBUG: anyone on the group can send garbage; the counters show floods.
        logger.debug("dropped %d-byte packet from %s:%d: %s", len(data), *sender, exc)
        return None
    if packet.namespace != namespace:
        stats.count_ignored("other-namespace")
        return None
    if packet.body.peer == own:
        stats.count_ignored("own")
        return None
    rejected = replay.check(packet.body.peer, packet.stamp_ms, now_ms())
    if rejected is not None:
        stats.count_invalid(rejected.reason)
        logger.debug("dropped packet from %s:%d: %s", *sender, rejected)
        return None
    return packet


async def find_peer(
    *,
    identity: Identity,
    namespace: str,
    group: Multiaddr,
    target: str | None,
    interval: float = 0.25,
    step: int = 8,
    stats: DiscoveryStats | None = None,
    replay: ReplayGuard | None = None,
) -> tuple[str, list[str]]:
    """Survey gradually until ``target`` (or, with None, any other peer) answers.

    Returns the answering peer's ID and the addrs it announced. Pass ``replay``
    to keep the per-peer stamp memory across calls (e.g. across reconnects).
    """
    stats = stats if stats is not None else DiscoveryStats()
    replay = replay if replay is not None else ReplayGuard()
    own = identity.peer_id
    if target is not None:
        try:
            public_key_from_peer_id(target)
        except InvalidPeerID as exc:
            raise ValueError(f"cannot look for {target!r}: {exc}") from None
        if target == own:
            raise ValueError("cannot discover ourselves")
    if interval <= 0:
        raise ValueError(f"survey interval must be positive, got {interval!r}")

    loop = asyncio.get_running_loop()
    distance = first_distance(own, target)
    async with MulticastSocket(group) as sock:
        logger.info(
            "surveying for %s in namespace %r on %s", target or "any peer", namespace, group
        )
        next_send = loop.time()
        while True:
            if loop.time() >= next_send:
                _send_survey(sock, identity, namespace, distance)
                distance = next_distance(distance, step)
                next_send = max(next_send + interval, loop.time())
            try:
                # The deadline only bounds this wait; no task outlives the loop.
                async with asyncio.timeout_at(next_send):
                    data, sender = await sock.recv()
            except TimeoutError:
                continue
            packet = admit(data, sender, namespace=namespace, own=own, replay=replay, stats=stats)
            found = _match(packet, target)
            if found is not None:
                logger.info("found %s at %s", found.peer, ", ".join(found.addrs) or "no addrs")
                return found.peer, list(found.addrs)


def _send_survey(sock: MulticastSocket, identity: Identity, namespace: str, distance: int) -> None:
    data = encode(Packet(namespace, Survey(identity.peer_id, distance)), identity)
    try:
        sock.send(data)
    except OSError as exc:
        logger.warning("survey send failed: %s", exc)
    logger.debug("surveyed namespace %r at distance %d", namespace, distance)


def _match(packet: Packet | None, target: str | None) -> Response | None:
    if packet is None:
        return None
    body = packet.body
    if not isinstance(body, Response):
        return None
    if target is not None and body.peer != target:
        return None
    return body
