"""What a worker node is told at start (``runworker`` builds it from its
options and the settings objects; the settings' defaults are defined once, in
``cluster_app/conf.py`` and ``workers/conf.py``, so none is repeated here)."""

from __future__ import annotations

from dataclasses import dataclass, field

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
    ping_interval: float  # WW_PING_INTERVAL
    ping_timeout: float  # WW_PING_TIMEOUT
    stop_grace: float  # --grace, default WW_STOP_GRACE
    cluster_key: bytes | None  # None: an open cluster
    # What it serves (--labels, --queues): the gateway sends it only runs of
    # these queues whose constraints these labels meet.
    labels: dict[str, str] = field(default_factory=dict)
    queues: tuple[str, ...] = ("default",)
    survey_interval: float = 0.25
    max_backoff: float = 5.0
