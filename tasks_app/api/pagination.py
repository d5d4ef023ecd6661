"""Pagination that keeps the seed's bare JSON array: the page is chosen with
?limit= and ?offset=, and the neighbours are given in a Link header
(RFC 8288), the total in X-Total-Count. A task's runs are paged the same
way inside `GET /tasks/<id>`, with ?runs_limit= and ?runs_offset=."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.db.models import QuerySet
from rest_framework.exceptions import ValidationError
from rest_framework.request import Request
from rest_framework.utils.urls import remove_query_param, replace_query_param

DEFAULT_LIMIT = 100
MAX_LIMIT = 1000
# A task's runs: the same bounds (a page of 1000 runs with their attempts
# is still a few hundred kilobytes).
DEFAULT_RUNS_LIMIT = 100
MAX_RUNS_LIMIT = 1000


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


@dataclass(frozen=True)
class RunsPage:
    """Which of a task's runs a request asks for: `limit` runs from run
    index `offset` on."""

    limit: int
    offset: int


def runs_page(request: Request) -> RunsPage:
    """?runs_limit= and ?runs_offset= (a 400 naming the parameter when invalid)."""
    return RunsPage(
        limit=_query_int(request, "runs_limit", DEFAULT_RUNS_LIMIT, low=1, high=MAX_RUNS_LIMIT),
        offset=_query_int(request, "runs_offset", 0, low=0, high=None),
    )


def runs_links(request: Request, page: RunsPage, total: int) -> dict[str, str]:
    """The Link header to the neighbouring pages of a task's `total` runs."""
    url = request.build_absolute_uri()
    links = []
    if page.offset + page.limit < total:
        links.append((_with_page(url, page.limit, page.offset + page.limit, "runs_"), "next"))
    if page.offset > 0:
        prev = min(max(page.offset - page.limit, 0), max(total - page.limit, 0))
        links.append((_with_page(url, page.limit, prev, "runs_"), "prev"))
    if not links:
        return {}
    return {"Link": ", ".join(f'<{href}>; rel="{rel}"' for href, rel in links)}


def _with_page(url: str, limit: int, offset: int, prefix: str = "") -> str:
    url = replace_query_param(url, prefix + "limit", limit)
    if offset:
        return replace_query_param(url, prefix + "offset", offset)
    return remove_query_param(url, prefix + "offset")


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
