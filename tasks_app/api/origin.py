"""Writes from browsers of other origins are refused, on every path in.

A page on any other origin (another host, another port: a different
origin) can make the user's browser send a `POST /tasks` to the loopback
gateway, which takes anonymous writes there. CSRF tokens do not help: the
anonymous curl has none and needs none. What a browser does send, and a
page cannot forge, is `Origin` (on every unsafe request) and, in current
browsers, `Sec-Fetch-Site`. So an unsafe method (POST, PUT, PATCH, DELETE)
is refused with a 403 when:

- `Origin` is present and is neither the gateway's own origin (the
  scheme and host the request came to) nor a trusted one
  (`WW_TRUSTED_ORIGINS`, `CSRF_TRUSTED_ORIGINS`); `Origin: null` (sandboxed
  frames, file pages) is never trusted;
- or `Origin` is absent and `Sec-Fetch-Site` says `cross-site` or
  `same-site` (another port or subdomain is still another origin).

A request with neither header (curl, scripts, the CLI, the Python client)
is not a browser's and is let through, as before. The rule is the pure
function `cross_site_problem`; `RefuseCrossSiteWrites` applies it to
everything Django serves (the REST views, DRF, the admin), and the
submission lane (tasks_app/api/lane.py) asks it before taking a request.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from typing import NamedTuple
from urllib.parse import urlsplit

from django.conf import settings
from django.core.exceptions import DisallowedHost
from django.http import HttpRequest, HttpResponse

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE"})
# What Sec-Fetch-Site says when the request was not made by a page of
# this origin; "same-origin" and "none" (typed into the address bar, a
# bookmark) are the user's own doing.
_OTHER_SITES = frozenset({"cross-site", "same-site"})


class Refusal(NamedTuple):
    """Why a request was refused: the header that gave it away and what is wrong."""

    header: str
    problem: str


def cross_site_problem(
    *,
    method: str,
    origin: str | None,
    fetch_site: str | None,
    own_origin: str,
    trusted: Iterable[str] = (),
) -> Refusal | None:
    """Why this request must be refused as a cross-site write, or None.

    `origin` and `fetch_site` are the request's `Origin` and
    `Sec-Fetch-Site` headers (None when absent); `own_origin` is
    `scheme://host[:port]` of the gateway as the request addressed it;
    `trusted` holds origins allowed besides it (`https://*.example.com`
    matches any subdomain, as in Django's `CSRF_TRUSTED_ORIGINS`)."""
    if method.upper() in SAFE_METHODS:
        return None
    if origin is not None:
        if _same_origin(origin, own_origin) or any(_matches(origin, t) for t in trusted):
            return None
        return Refusal(
            "Origin",
            f"cross-origin {method.upper()} refused: {origin} is not this gateway's origin"
            f" ({own_origin}) nor in WW_TRUSTED_ORIGINS",
        )
    if fetch_site is not None and fetch_site.strip().lower() in _OTHER_SITES:
        return Refusal(
            "Sec-Fetch-Site",
            f"cross-site {method.upper()} refused: sent by a page of another site"
            f" ({fetch_site.strip().lower()}) without an Origin",
        )
    return None


def trusted_origins() -> list[str]:
    """The origins allowed to write besides the gateway's own."""
    return [
        *settings.WW_TASKS.trusted_origins,
        *getattr(settings, "CSRF_TRUSTED_ORIGINS", []),
    ]


def refusal_body(refusal: Refusal) -> bytes:
    """The 403's JSON body, in the API's error shape (tasks_app/api/errors.py)."""
    return json.dumps(
        {
            "field": refusal.header,
            "problem": refusal.problem,
            "detail": f"{refusal.header}: {refusal.problem}",
        }
    ).encode()


def _normal(origin: str) -> tuple[str, str, int | None] | None:
    """(scheme, host, port) of an origin with the scheme's default port
    made explicit; None if it is not one (`null`, garbage)."""
    try:
        parts = urlsplit(origin.strip().lower())
        port = parts.port
    except ValueError:
        return None
    if (
        parts.scheme not in ("http", "https")
        or not parts.hostname
        or parts.username is not None
        or parts.path not in ("", "/")
        or parts.query
        or parts.fragment
    ):
        return None  # an Origin is scheme://host[:port], nothing more
    default = 443 if parts.scheme == "https" else 80
    return parts.scheme, parts.hostname, port if port is not None else default


def _same_origin(origin: str, other: str) -> bool:
    mine = _normal(origin)
    return mine is not None and mine == _normal(other)


def _matches(origin: str, trusted: str) -> bool:
    """Whether `origin` is the trusted origin, or under its `*.` wildcard."""
    if "://*." not in trusted:
        return _same_origin(origin, trusted)
    mine = _normal(origin)
    if mine is None:
        return False
    scheme, _, pattern = trusted.strip().lower().partition("://*.")
    domain, _, port_text = pattern.partition(":")
    default = 443 if scheme == "https" else 80
    port = int(port_text) if port_text.isdigit() else default
    return (
        mine[0] == scheme
        and mine[2] == port
        and (mine[1] == domain or mine[1].endswith("." + domain))
    )


class RefuseCrossSiteWrites:
    """Django middleware: `cross_site_problem` for every request Django
    serves, before sessions, CSRF or any view see it."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.method not in SAFE_METHODS:
            refusal = self._refusal(request)
            if refusal is not None:
                return HttpResponse(
                    refusal_body(refusal), status=403, content_type="application/json"
                )
        return self.get_response(request)

    @staticmethod
    def _refusal(request: HttpRequest) -> Refusal | None:
        try:
            host = request.get_host()
        except DisallowedHost:
            return None  # CommonMiddleware answers 400 for it
        return cross_site_problem(
            method=request.method or "",
            origin=request.headers.get("Origin"),
            fetch_site=request.headers.get("Sec-Fetch-Site"),
            own_origin=f"{request.scheme}://{host}",
            trusted=trusted_origins(),
        )
