"""Filters the pages share: a peer ID short enough for a table cell, a run
time from an attempt's timestamps."""

from __future__ import annotations

from datetime import datetime

from django import template

register = template.Library()


@register.filter
def short_peer(peer_id: str) -> str:
    """`12D3KooWAbc…xyz123`: the prefix every peer ID shares tells nothing,
    the last characters tell peers apart (the full ID goes in a title)."""
    if len(peer_id) <= 20:
        return peer_id
    return f"{peer_id[:8]}…{peer_id[-6:]}"


@register.filter
def run_time(started: datetime | None, finished: datetime | None) -> str:
    if started is None or finished is None:
        return "—"
    return f"{(finished - started).total_seconds():.3f} s"
