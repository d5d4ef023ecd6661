"""Content negotiation: the shortcut for clients that accept anything (or
JSON) picks what DRF's own negotiation picks, for every Accept header and
format override; whatever it does not recognise is left to DRF."""

from __future__ import annotations

import pytest
from django.http import Http404
from rest_framework import exceptions
from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.request import Request
from rest_framework.settings import api_settings
from rest_framework.test import APIRequestFactory

from tasks_app.api.negotiation import JSONFirstNegotiation

ACCEPTS = [
    None,
    "*/*",
    "application/json",
    "",
    "application/json; indent=4",
    "text/html",
    "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",
    "application/xml",
    "text/*",
    "application/*",
]
QUERIES = ["", "?format=json", "?format=api", "?format=xml"]


def _choice(negotiation: DefaultContentNegotiation, accept: str | None, query: str) -> object:
    headers = {} if accept is None else {"HTTP_ACCEPT": accept}
    request = Request(APIRequestFactory().get(f"/tasks{query}", **headers))
    renderers = [renderer() for renderer in api_settings.DEFAULT_RENDERER_CLASSES]
    try:
        renderer, media_type = negotiation.select_renderer(request, renderers)
    except exceptions.NotAcceptable:
        return "406"
    except Http404:
        return "404"
    return type(renderer).__name__, media_type


@pytest.mark.parametrize("query", QUERIES)
@pytest.mark.parametrize("accept", ACCEPTS)
def test_the_shortcut_chooses_what_drf_chooses(accept: str | None, query: str) -> None:
    ours = _choice(JSONFirstNegotiation(), accept, query)
    assert ours == _choice(DefaultContentNegotiation(), accept, query)


def test_it_is_the_negotiation_in_use() -> None:
    assert api_settings.DEFAULT_CONTENT_NEGOTIATION_CLASS is JSONFirstNegotiation


@pytest.mark.django_db
def test_a_client_without_an_accept_header_gets_json(client: object) -> None:
    response = client.get("/tasks")  # type: ignore[attr-defined]
    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    browser = client.get("/tasks", HTTP_ACCEPT="text/html")  # type: ignore[attr-defined]
    assert browser["Content-Type"].startswith("text/html")
