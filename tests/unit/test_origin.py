"""The cross-site write rule (tasks_app/api/origin.py): unsafe methods from
a browser page of another origin are refused; requests without Origin and
Sec-Fetch-Site (curl, scripts) and safe methods are not."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tasks_app.api.origin import Refusal, cross_site_problem, refusal_body

OWN = "http://127.0.0.1:8080"


def problem(
    method: str = "POST",
    origin: str | None = None,
    fetch_site: str | None = None,
    trusted: tuple[str, ...] = (),
) -> Refusal | None:
    return cross_site_problem(
        method=method, origin=origin, fetch_site=fetch_site, own_origin=OWN, trusted=trusted
    )


@pytest.mark.parametrize("method", ["POST", "PUT", "PATCH", "DELETE", "post"])
@pytest.mark.parametrize(
    "origin",
    [
        "http://127.0.0.2:9000",  # another loopback host
        "http://127.0.0.1:9000",  # another port is another origin
        "https://127.0.0.1:8080",  # another scheme too
        "http://localhost:8080",  # another host name for the same socket
        "null",  # sandboxed frame, file:// page
        "garbage",
        "http://127.0.0.1:8080.evil.example",
    ],
)
def test_a_foreign_origin_is_refused_for_every_unsafe_method(method: str, origin: str) -> None:
    refusal = problem(method, origin, fetch_site="cross-site")
    assert refusal is not None
    assert refusal.header == "Origin"
    assert origin in refusal.problem and "WW_TRUSTED_ORIGINS" in refusal.problem


@pytest.mark.parametrize("fetch_site", ["cross-site", "same-site", "Cross-Site"])
def test_sec_fetch_site_of_another_site_without_origin_is_refused(fetch_site: str) -> None:
    refusal = problem("POST", None, fetch_site)
    assert refusal is not None and refusal.header == "Sec-Fetch-Site"


@pytest.mark.parametrize(
    ("origin", "fetch_site"),
    [
        (None, None),  # curl, scripts, the CLI
        (OWN, "same-origin"),  # the gateway's own pages (API docs, status page)
        ("http://127.0.0.1:8080/", None),  # a trailing slash is the same origin
        ("HTTP://127.0.0.1:8080", None),
        (None, "same-origin"),
        (None, "none"),  # typed into the address bar
    ],
)
def test_requests_not_from_another_origin_pass(origin: str | None, fetch_site: str | None) -> None:
    assert problem("POST", origin, fetch_site) is None


def test_the_default_port_is_the_same_origin() -> None:
    assert (
        cross_site_problem(
            method="POST",
            origin="http://gw.example",
            fetch_site=None,
            own_origin="http://gw.example:80",
        )
        is None
    )


@pytest.mark.parametrize("method", ["GET", "HEAD", "OPTIONS", "TRACE"])
def test_safe_methods_are_never_refused(method: str) -> None:
    assert problem(method, "http://127.0.0.2:9000", "cross-site") is None


def test_trusted_origins_may_write_and_wildcards_match_subdomains_only() -> None:
    trusted = ("http://127.0.0.2:9000", "https://*.example.com")
    assert problem("POST", "http://127.0.0.2:9000", "cross-site", trusted) is None
    assert problem("POST", "https://app.example.com", "cross-site", trusted) is None
    assert problem("POST", "https://a.b.example.com", "cross-site", trusted) is None
    assert problem("POST", "https://example.com", "cross-site", trusted) is None
    assert problem("POST", "https://evilexample.com", "cross-site", trusted) is not None
    assert problem("POST", "http://app.example.com", "cross-site", trusted) is not None
    assert problem("POST", "http://127.0.0.2:9001", "cross-site", trusted) is not None


def test_a_trusted_origin_decides_even_if_fetch_site_says_cross_site() -> None:
    # A trusted origin is another site by definition.
    assert (
        problem("DELETE", "http://127.0.0.2:9000", "cross-site", ("http://127.0.0.2:9000",)) is None
    )


def test_the_body_names_the_header_and_the_problem() -> None:
    refusal = problem("POST", "http://127.0.0.2:9000")
    assert refusal is not None
    body = json.loads(refusal_body(refusal))
    assert body["field"] == "Origin"
    assert body["problem"] == refusal.problem
    assert body["detail"] == f"Origin: {refusal.problem}"


@given(
    st.sampled_from(["http", "https"]),
    st.from_regex(r"\A[a-z0-9][a-z0-9.-]{0,20}\Z"),
    st.integers(1, 65535),
    st.sampled_from(["POST", "PUT", "PATCH", "DELETE"]),
)
def test_any_other_origin_is_refused(scheme: str, host: str, port: int, method: str) -> None:
    origin = f"{scheme}://{host}:{port}"
    if (scheme, host, port) != ("http", "127.0.0.1", 8080):
        assert problem(method, origin) is not None
    else:
        assert problem(method, origin) is None
