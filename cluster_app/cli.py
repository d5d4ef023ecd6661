"""Options shared by the node commands (`rungateway`, `runworker`: the
seed's flags), each with its environment variable, and logging set-up."""

from __future__ import annotations

import logging
import logging.config
from typing import Any

from django.conf import settings


def add_cluster_options(parser: Any) -> None:
    parser.add_argument(
        "--ns",
        default=settings.WW_CLUSTER.ns,
        help="cluster namespace (default %(default)s; env WW_NS)",
    )
    parser.add_argument(
        "--listen",
        default=settings.WW_CLUSTER.listen,
        help="RPC listen multiaddr (default %(default)s; env WW_LISTEN)",
    )
    parser.add_argument(
        "--discover",
        default=settings.WW_CLUSTER.discover,
        help="multicast group for discovery (default %(default)s; env WW_DISCOVER)",
    )
    parser.add_argument(
        "--cluster-key-file",
        default=settings.WW_CLUSTER.cluster_key_file,
        help="shared cluster secret; only nodes holding it can join "
        "(default: none, an open cluster; env WW_CLUSTER_KEY_FILE)",
    )
    parser.add_argument(
        "--log-level",
        default=settings.LOG_LEVEL,
        choices=["DEBUG", "INFO", "WARNING", "ERROR"],
        type=str.upper,
        help="log level of the ww.* loggers (default %(default)s; env WW_LOG_LEVEL)",
    )


def configure_logging(level: str) -> None:
    config: dict[str, Any] = dict(settings.LOGGING)
    loggers = dict(config.get("loggers", {}))
    loggers["ww"] = {**loggers.get("ww", {}), "level": level}
    config["loggers"] = loggers
    logging.config.dictConfig(config)


def cluster_key(options: dict[str, Any]) -> bytes | None:
    """The cluster secret named by --cluster-key-file, or None."""
    from django.core.management.base import CommandError

    from cluster_app.tls import ClusterKeyError, load_cluster_key

    path = options.get("cluster_key_file") or ""
    if not path:
        return None
    try:
        return load_cluster_key(path)
    except ClusterKeyError as exc:
        raise CommandError(str(exc)) from None
