"""What a worker node is told at start (``runworker`` builds it from its
options and the settings)."""

from __future__ import annotations

from dataclasses import dataclass

from cluster_app.identity import Identity
from cluster_app.multiaddr import Multiaddr


@dataclass(frozen=True)
class WorkerConfig:
    identity: Identity
    namespace: str
    dial: str | None  # the gateway's peer ID; None: the first gateway found
    addrs: tuple[Multiaddr, ...]  # static bootstrap; empty: discover by multicast
    discover: Multiaddr
    concurrency: int
    survey_interval: float = 0.25
    ping_interval: float = 2.0
    ping_timeout: float = 5.0
    max_backoff: float = 5.0
    stop_grace: float = 30.0
    cluster_key: bytes | None = None
