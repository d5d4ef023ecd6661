"""Parsing and printing the seed's multiaddr forms."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cluster_app.multiaddr import Multiaddr, MultiaddrError, parse_multiaddr, parse_multiaddrs


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("/ip4/127.0.0.1/tcp/4001", Multiaddr("127.0.0.1", "tcp", 4001)),
        ("/ip4/127.0.0.1/tcp/0", Multiaddr("127.0.0.1", "tcp", 0)),
        ("/ip4/10.1.2.3/udp/65535", Multiaddr("10.1.2.3", "udp", 65535)),
        ("/ip4/228.8.8.8/udp/8822/multicast/lo", Multiaddr("228.8.8.8", "udp", 8822, "lo")),
        ("/ip4/239.255.0.1/udp/1/multicast/eth0", Multiaddr("239.255.0.1", "udp", 1, "eth0")),
    ],
)
def test_valid_multiaddrs_parse_and_print_back(text: str, expected: Multiaddr) -> None:
    parsed = parse_multiaddr(text)
    assert parsed == expected
    assert str(parsed) == text


def test_lo0_is_an_alias_of_lo() -> None:
    parsed = parse_multiaddr("/ip4/228.8.8.8/udp/8822/multicast/lo0")
    assert parsed.multicast_iface == "lo"
    assert str(parsed) == "/ip4/228.8.8.8/udp/8822/multicast/lo"
    assert parsed == parse_multiaddr("/ip4/228.8.8.8/udp/8822/multicast/lo")


def test_multiaddr_helpers() -> None:
    group = parse_multiaddr("/ip4/228.8.8.8/udp/8822/multicast/lo")
    assert group.is_multicast and group.sockaddr == ("228.8.8.8", 8822)
    assert not parse_multiaddr("/ip4/127.0.0.1/tcp/1").is_multicast


@pytest.mark.parametrize(
    ("text", "complaint"),
    [
        ("", "must start with '/'"),
        ("ip4/127.0.0.1/tcp/1", "must start with '/'"),
        ("/ip6/::1/tcp/1", "only /ip4"),
        ("/dns4/localhost/tcp/1", "only /ip4"),
        ("/ip4/127.0.0.1", "incomplete"),
        ("/ip4/127.0.0.1/tcp", "incomplete"),
        ("/ip4/256.0.0.1/tcp/1", "bad ip4 address"),
        ("/ip4/127.0.0.01/tcp/1", "bad ip4 address"),
        ("/ip4/localhost/tcp/1", "bad ip4 address"),
        ("/ip4/127.0.0.1/sctp/1", "transport must be tcp or udp"),
        ("/ip4/127.0.0.1/tcp/65536", "port must be 0..65535"),
        ("/ip4/127.0.0.1/tcp/-1", "bad tcp port"),
        ("/ip4/127.0.0.1/tcp/+1", "bad tcp port"),
        ("/ip4/127.0.0.1/tcp/1e3", "bad tcp port"),
        ("/ip4/127.0.0.1/tcp/", "must not end with '/'"),
        ("/ip4/127.0.0.1/tcp/\u0661", "bad tcp port"),  # Arabic-Indic digit one
        ("/ip4/127.0.0.1/udp/0", "port must be 1..65535"),
        ("/ip4/127.0.0.1/tcp/1/", "must not end with '/'"),
        ("/ip4/127.0.0.1/tcp/1/p2p/12D3KooW", "unexpected"),
        ("/ip4/127.0.0.1/udp/8822/multicast/lo", "224.0.0.0/4"),
        ("/ip4/240.0.0.1/udp/8822/multicast/lo", "224.0.0.0/4"),
        ("/ip4/228.8.8.8/tcp/8822/multicast/lo", "multicast needs udp"),
        ("/ip4/228.8.8.8/udp/8822/multicast", "exactly one interface"),
        ("/ip4/228.8.8.8/udp/8822/multicast/lo/extra", "exactly one interface"),
        ("/ip4/228.8.8.8/udp/8822/multicast/a-name-far-too-long", "bad interface name"),
        ("/ip4/228.8.8.8/udp/8822/multicast/l o", "bad interface name"),
        ("/ip4/228.8.8.8/udp/8822/multicast/..", "bad interface name"),
    ],
)
def test_invalid_multiaddrs_say_what_is_wrong(text: str, complaint: str) -> None:
    with pytest.raises(MultiaddrError, match=re.escape(complaint)):
        parse_multiaddr(text)


def test_constructor_validates_like_the_parser() -> None:
    with pytest.raises(MultiaddrError):
        Multiaddr("127.0.0.1", "udp", 8822, "lo")
    with pytest.raises(MultiaddrError):
        Multiaddr("127.0.0.1", "quic", 1)  # type: ignore[arg-type]
    with pytest.raises(MultiaddrError):
        Multiaddr("127.0.0.1", "tcp", True + 70_000)


def test_parse_multiaddrs_splits_on_commas_and_spaces() -> None:
    parsed = parse_multiaddrs(" /ip4/127.0.0.1/tcp/1,/ip4/127.0.0.1/tcp/2 , /ip4/10.0.0.1/udp/3\n")
    assert [str(m) for m in parsed] == [
        "/ip4/127.0.0.1/tcp/1",
        "/ip4/127.0.0.1/tcp/2",
        "/ip4/10.0.0.1/udp/3",
    ]
    assert parse_multiaddrs("") == []
    with pytest.raises(MultiaddrError):
        parse_multiaddrs("/ip4/127.0.0.1/tcp/1,/ip4/nope/tcp/2")


@given(st.text(max_size=80))
def test_arbitrary_text_raises_only_multiaddr_error(text: str) -> None:
    try:
        parsed = parse_multiaddr(text)
    except MultiaddrError:
        return
    assert parse_multiaddr(str(parsed)) == parsed


_SEGMENT = st.sampled_from(
    [
        "ip4",
        "tcp",
        "udp",
        "multicast",
        "lo",
        "lo0",
        "228.8.8.8",
        "127.0.0.1",
        "8822",
        "0",
        "65536",
        "",
    ]
)


@given(st.lists(_SEGMENT, max_size=7))
def test_near_miss_texts_raise_only_multiaddr_error(segments: list[str]) -> None:
    text = "/" + "/".join(segments)
    try:
        parsed = parse_multiaddr(text)
    except MultiaddrError:
        return
    assert str(parsed) == text.replace("/lo0", "/lo")


@st.composite
def multiaddrs(draw: st.DrawFn) -> Multiaddr:
    multicast = draw(st.booleans())
    if multicast:
        ip = draw(st.ip_addresses(v=4, network="224.0.0.0/4"))
        iface = draw(
            st.from_regex(r"[A-Za-z0-9_.:@-]{1,15}", fullmatch=True).filter(
                lambda name: name not in (".", "..")
            )
        )
        return Multiaddr(str(ip), "udp", draw(st.integers(1, 65535)), iface)
    ip = draw(st.ip_addresses(v=4))
    transport = draw(st.sampled_from(["tcp", "udp"]))
    port = draw(st.integers(0 if transport == "tcp" else 1, 65535))
    return Multiaddr(str(ip), transport, port)


@given(multiaddrs())
def test_print_parse_round_trip(addr: Multiaddr) -> None:
    assert parse_multiaddr(str(addr)) == addr
    assert str(parse_multiaddr(str(addr))) == str(addr)
