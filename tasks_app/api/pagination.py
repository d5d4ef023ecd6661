"""Pagination that keeps the seed's bare JSON array: the page is chosen with
?limit= and ?offset=, and the neighbours are given in a Link header
(RFC 8288), the total in X-Total-Count."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.db.models import QuerySet
from rest_framework.exceptions import ValidationError
from rest_framework.request import Request
from rest_framework.utils.urls import remove_query_param, replace_query_param

DEFAULT_LIMIT = 100
MAX_LIMIT = 1000


@dataclass(frozen=True)
class Page:
    items: list[Any]
    headers: dict[str, str]


def paginate(queryset: QuerySet[Any], request: Request) -> Page:
    limit = _query_int(request, "limit", DEFAULT_LIMIT, low=1, high=MAX_LIMIT)
    offset = _query_int(request, "offset", 0, low=0, high=None)
    total = queryset.count()
    items = list(queryset[offset : offset + limit])
    url = request.build_absolute_uri()
    links = []
    if offset + limit < total:
        links.append((_with_page(url, limit, offset + limit), "next"))
    if offset > 0:
        links.append((_with_page(url, limit, max(offset - limit, 0)), "prev"))
    headers = {"X-Total-Count": str(total)}
    if links:
        headers["Link"] = ", ".join(f'<{href}>; rel="{rel}"' for href, rel in links)
    return Page(items=items, headers=headers)


def _with_page(url: str, limit: int, offset: int) -> str:
    url = replace_query_param(url, "limit", limit)
    if offset:
        return replace_query_param(url, "offset", offset)
    return remove_query_param(url, "offset")


def _query_int(request: Request, name: str, default: int, *, low: int, high: int | None) -> int:
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ValidationError({name: ["must be an integer"]}) from None
    if value < low or (high is not None and value > high):
        bound = f"between {low} and {high}" if high is not None else f"at least {low}"
        raise ValidationError({name: [f"must be {bound}"]})
    return value
