"""Content negotiation: DRF's, with the usual case answered at once."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.renderers import BaseRenderer
from rest_framework.request import Request

# What scripts and clients send (curl, httpx, requests: `*/*`; http.client:
# no header at all), and what our first renderer (JSON) is chosen for anyway.
_ANY_OR_JSON = frozenset({None, "*/*", "application/json"})


class JSONFirstNegotiation(DefaultContentNegotiation):
    """A request that accepts anything, or exactly JSON, and names no
    `?format=` gets the first renderer when that is JSON, as DRF's
    negotiation would choose, without parsing and ranking the Accept header
    (a tenth of a small request's time). Every other request (a browser's
    Accept list, a format override) is negotiated by DRF."""

    def select_renderer(
        self, request: Request, renderers: Iterable[BaseRenderer], format_suffix: Any = None
    ) -> tuple[BaseRenderer, str]:
        renderers = list(renderers)
        first = renderers[0] if renderers else None
        if (
            first is not None
            and first.media_type == "application/json"
            and format_suffix is None
            and request.META.get("HTTP_ACCEPT") in _ANY_OR_JSON
            and self.settings.URL_FORMAT_OVERRIDE not in request.query_params
        ):
            return first, first.media_type
        return super().select_renderer(request, renderers, format_suffix)
