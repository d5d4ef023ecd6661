"""Who may read and who may write through the REST API.

Two settings decide (wwproject/settings.py):

- ``WW_WRITES_NEED_AUTH``: ``true``, ``false`` or ``auto`` (the default).
  ``auto`` means: writes need an authenticated user unless the HTTP server is
  bound to a loopback address. ``rungateway`` tells this module its ``--http``
  host at start-up (``set_http_bind``); a server started any other way
  (daphne, uvicorn, ...) leaves it unknown, and an unknown bind address counts
  as public, so such a server is safe by default.
- ``WW_READS_NEED_AUTH``: ``true`` or ``false`` (the default).

So the seed's anonymous curl keeps working on the loopback default, and a
gateway reachable from the network takes writes only with a token
(``manage.py issuetoken USERNAME``) or a logged-in session (with CSRF).
"""

from __future__ import annotations

import ipaddress
from typing import Any

from django.conf import settings
from rest_framework.permissions import SAFE_METHODS, BasePermission
from rest_framework.request import Request

# The host this process's HTTP server is bound to: a fact about the process,
# known only once the server command has parsed its options, so it is set
# then (`set_http_bind`) and read at request time. None: not known.
http_bind: str | None = None
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}
_LOOPBACK_NAMES = {"localhost", "localhost.localdomain", "ip6-localhost"}


def is_loopback(host: str | None) -> bool:
    """Whether ``host`` (an address or name, IPv6 possibly in brackets) is loopback only.

    Unknown, empty and wildcard addresses (``0.0.0.0``, ``::``) are not.
    """
    if not host:
        return False
    host = host.strip().strip("[]").lower()
    if host in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def parse_mode(raw: object) -> bool | None:
    """``True``/``False`` for a boolean word, ``None`` for ``auto``; ValueError otherwise."""
    if isinstance(raw, bool):
        return raw
    text = str(raw).strip().lower()
    if text in ("", "auto"):
        return None
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise ValueError(f"expected true, false or auto, got {raw!r}")


def writes_need_auth() -> bool:
    """Whether a POST (or any unsafe method) needs an authenticated user now."""
    mode = parse_mode(str(settings.WW_TASKS.writes_need_auth))
    if mode is not None:
        return mode
    return not is_loopback(http_bind)


def reads_need_auth() -> bool:
    """Whether a GET (or HEAD, OPTIONS) needs an authenticated user."""
    return settings.WW_TASKS.reads_need_auth


def is_authenticated(request: Request) -> bool:
    # UNAUTHENTICATED_USER is None in our DRF settings: anonymous is None.
    user = getattr(request, "user", None)
    return bool(user is not None and user.is_authenticated and user.is_active)


class TaskAPIPermission(BasePermission):
    """Reads are open unless configured otherwise; writes are open only where
    the settings say anonymous writes are safe (see the module docstring)."""

    message = "authentication required: send 'Authorization: Token <key>'"

    def has_permission(self, request: Request, view: Any) -> bool:
        if request.method in SAFE_METHODS:
            return not reads_need_auth() or is_authenticated(request)
        return not writes_need_auth() or is_authenticated(request)


def set_http_bind(host: str | None) -> None:
    """Record the address this process's HTTP server binds to (for ``auto``),
    once, before it serves."""
    global http_bind
    http_bind = None if host is None else host.strip().strip("[]")
