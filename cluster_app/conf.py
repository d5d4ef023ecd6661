"""The cluster side's settings: a node's state and addresses, liveness, the
gateway's limits on workers and connections.

Read once by ``wwproject/settings.py`` (``settings.WW_CLUSTER``); see
``tasks_app/settings_spec.py`` for how a field becomes ``WW_<NAME>``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from tasks_app.settings_spec import KIB, MIB, Choice, EnvSettings, setting

_PROJECT_DIR = Path(__file__).resolve().parent.parent


class LogLevel(Choice):
    DEBUG = "DEBUG"
    INFO = "INFO"
    WARNING = "WARNING"
    ERROR = "ERROR"


@dataclass(frozen=True)
class ClusterSettings(EnvSettings):
    # -- a node: where it keeps its state, which cluster, which addresses
    state_dir: Path = setting(  # noqa: RUF009 - setting() makes the field, as field() does
        _PROJECT_DIR / "var",
        "where a node keeps its state: the SQLite database, its keys, `gateway.lock`",
        shown="`var/` in the project",
    )
    ns: str = setting("ww", "cluster namespace (`--ns`)")
    discover: str = setting(
        "/ip4/228.8.8.8/udp/8822/multicast/lo",
        "multicast group for discovery (`--discover`; loopback: a default run never leaves "
        "the host)",
    )
    listen: str = setting("/ip4/127.0.0.1/tcp/0", "the gateway's RPC listen multiaddr (`--listen`)")
    identity_file: str = setting(
        "", "where the gateway keeps its key (`--identity-file`); empty: WW_STATE_DIR/identity.key"
    )
    cluster_key_file: str = setting(
        "",
        "shared cluster secret; only nodes holding it can join (`--cluster-key-file`); "
        "empty: an open cluster",
    )
    log_level: LogLevel = setting(  # noqa: RUF009 - setting() makes the field
        LogLevel.INFO, "log level of the ww.* loggers (`--log-level`)"
    )

    # -- liveness and the sweep
    ping_interval: float = setting(2.0, "how often gateway and worker ping each other", unit="s")
    ping_timeout: float = setting(
        5.0, "a peer that answers no ping this long is dropped (a half-open link)", unit="s"
    )
    sweep_interval: float = setting(
        5.0, "how often the gateway looks for due runs no notification announced", unit="s"
    )
    reclaim_grace: float = setting(
        60.0,
        "an attempt still running this long past its limit, that no call waits for, is lost "
        "and its run tried again",
        unit="s",
    )

    # -- what the gateway takes from a worker (a member claiming 2**32 - 1
    # slots would otherwise draw every run)
    max_worker_concurrency: int = setting(
        256, "a worker's claimed concurrency is taken as at most this"
    )
    result_max_bytes: int = setting(
        64 * KIB,
        "UTF-8 bytes of a run's result (and of its error) sent back; longer is cut",
        unit="bytes",
    )

    # -- connection admission. Each worker process holds one RPC connection
    # (bench/many_workers.py makes 100 from one address); the unauthenticated
    # cap bounds a flood from many addresses too (workers refused meanwhile
    # retry). Behind a reverse proxy every HTTP client has the proxy's address.
    rpc_auth_timeout: float = setting(
        10.0, "an RPC connection must finish TLS and its membership proof within this", unit="s"
    )
    rpc_max_per_source: int = setting(128, "RPC connections one source address may hold; 0: no cap")
    rpc_max_unauthenticated: int = setting(
        256, "RPC connections still authenticating, from all sources; 0: no cap"
    )
    http_header_timeout: float = setting(
        10.0, "a request's headers must be complete within this, or 408 and closed", unit="s"
    )
    http_max_per_source: int = setting(
        64, "HTTP connections (websockets included) one source address may hold; 0: no cap"
    )
    ws_max_buffered: int = setting(
        MIB, "sending to a websocket waits while this much waits unsent for it", unit="bytes"
    )
    ws_stall: float = setting(
        5.0,
        "a websocket whose backlog stays over WW_WS_MAX_BUFFERED this long is closed (4008)",
        unit="s",
    )
    ws_close_grace: float = setting(
        10.0,
        "a closed client that does not finish the closing handshake within this is cut off",
        unit="s",
    )

    @property
    def gateway_identity_file(self) -> Path:
        return Path(self.identity_file) if self.identity_file else self.state_dir / "identity.key"
