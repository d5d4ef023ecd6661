"""`runworker --labels k=v,k=v --queues a,b`: what a worker serves, parsed
and held to the bounds the gateway admits (cluster_app.offers), so that a
worker refused for them is told at start, not by a gateway's log."""

from __future__ import annotations

from cluster_app import offers
from tasks_app.policy import DEFAULT_QUEUE


class BadRoutingOption(ValueError):
    """An option the gateway would refuse, with why."""


def parse_labels(text: str) -> dict[str, str]:
    """`k=v,k=v` as labels (empty: none). A value may hold `=`; spaces
    around names and values are dropped."""
    labels: dict[str, str] = {}
    for item in (part.strip() for part in text.split(",")):
        if not item:
            continue
        key, sep, value = item.partition("=")
        key, value = key.strip(), value.strip()
        if not sep or not key:
            raise BadRoutingOption(f"--labels: {item!r} is not key=value")
        labels[key] = value
    _check(offers.judge_routing(labels=list(labels.items()), queues=[]))
    return labels


def parse_queues(text: str) -> list[str]:
    """`a,b` as the queues served, in order, once each (empty: `default`)."""
    queues = list(dict.fromkeys(q.strip() for q in text.split(",") if q.strip()))
    _check(offers.judge_routing(labels=[], queues=queues))
    return queues or [DEFAULT_QUEUE]


def _check(verdict: offers.Routing | offers.Refused) -> None:
    if isinstance(verdict, offers.Refused):
        raise BadRoutingOption(verdict.reason)
