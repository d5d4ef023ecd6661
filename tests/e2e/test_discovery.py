"""Discovery end to end: serve_surveys, find_peer and casm_ls over real multicast.

Everything runs inside a private network namespace (the ``netns`` fixture), so
no datagram leaves this test.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import schema
from cluster_app.discovery import DiscoveryStats, find_peer, serve_surveys
from cluster_app.identity import Identity
from cluster_app.multiaddr import Multiaddr, parse_multiaddr
from cluster_app.multicast import MulticastSocket
from cluster_app.packet import SIGNATURE_DOMAIN, Packet, Request, Survey, encode, now_ms
from tests.netns import NetNS

PROJECT_ROOT = Path(__file__).resolve().parents[2]
GROUP = "/ip4/228.8.8.8/udp/8822/multicast/lo"
SERVED_ADDRS = ["/ip4/127.0.0.1/tcp/4001", "/ip4/127.0.0.1/tcp/4002"]
GARBAGE = b"definitely not a boot packet"

HEADER = r"\[\d{4}\] Got multicast packet \((\d+) byte\)\n"


def survey_block(peer: str) -> re.Pattern[str]:
    return re.compile(
        HEADER + r"  type:      survey\n"
        r"  namespace: ww\n"
        r"  size:      \1 bytes\n"
        rf"  peer:      {peer}\n"
        r"  distance:   \d{1,3}\n\n"
    )


def response_block(peer: str, addrs: list[str]) -> re.Pattern[str]:
    return re.compile(
        HEADER + r"  type:      response\n"
        r"  namespace: ww\n"
        r"  size:      \1 bytes\n"
        rf"  peer:      {peer}\n"
        rf"  addrs:     {re.escape(', '.join(addrs))}\n\n"
    )


def request_block(peer: str) -> re.Pattern[str]:
    return re.compile(
        HEADER + r"  type:      request\n"
        r"  namespace: ww\n"
        r"  size:      \1 bytes\n"
        rf"  peer:      {peer}\n\n"
    )


INVALID_BLOCK = re.compile(
    rf"\[\d{{4}}\] Got multicast packet \({len(GARBAGE)} byte\)\n"
    r"  invalid:   [^\n]+\n\n"
)


def wait_for(condition: Callable[[], bool], what: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.05)


class CasmLs:
    """A `manage.py casm_ls` process in the namespace, output captured in files."""

    def __init__(self, netns: NetNS, tmp: Path, name: str, *args: str) -> None:
        self.out_path, self.err_path = tmp / f"{name}.out", tmp / f"{name}.err"
        env = {
            **os.environ,
            "WW_STATE_DIR": str(tmp / "state"),
            "DJANGO_SETTINGS_MODULE": "wwproject.settings",
            "PYTHONUNBUFFERED": "1",
        }
        with self.out_path.open("wb") as out, self.err_path.open("wb") as err:
            self.proc = netns.spawn(
                [sys.executable, "manage.py", "casm_ls", "--discover", GROUP, *args],
                cwd=PROJECT_ROOT,
                env=env,
                stdout=out,
                stderr=err,
            )

    @property
    def stdout(self) -> str:
        return self.out_path.read_text()

    def wait_listening(self) -> None:
        wait_for(
            lambda: "listening on" in self.err_path.read_text() or self.proc.poll() is not None,
            "casm_ls to join the group",
            timeout=60,
        )
        assert self.proc.poll() is None, f"casm_ls exited: {self.err_path.read_text()}"

    def stop(self) -> int:
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout=10)


async def _send(group: Multiaddr, *datagrams: bytes) -> None:
    async with MulticastSocket(group) as sock:
        for data in datagrams:
            sock.send(data)


async def _discover(
    group: Multiaddr, server: Identity, seeker: Identity, stats: DiscoveryStats
) -> tuple[str, list[str]]:
    serving = asyncio.create_task(
        serve_surveys(
            identity=server, namespace="ww", group=group, addrs=lambda: SERVED_ADDRS, stats=stats
        )
    )
    try:
        # find_peer repeats its survey, so it needs no head start for the server.
        found = await asyncio.wait_for(
            find_peer(
                identity=seeker, namespace="ww", group=group, target=server.peer_id, interval=0.1
            ),
            timeout=15,
        )
        # Garbage, then a valid request: the server must survive the first and answer the second.
        answered = stats.answered
        await _send(group, GARBAGE, encode(Packet("ww", Request(seeker.peer_id)), seeker))
        deadline = asyncio.get_running_loop().time() + 10
        while stats.answered == answered and asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(0.05)
        return found
    finally:
        serving.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await serving


def test_find_peer_finds_the_server_and_casm_ls_prints_it(netns: NetNS, tmp_path: Path) -> None:
    group = parse_multiaddr(GROUP)
    server, seeker = Identity.generate(), Identity.generate()
    casm = CasmLs(netns, tmp_path, "casm_ls")
    other_ns = CasmLs(netns, tmp_path, "casm_ls_other", "--ns", "elsewhere")
    casm.wait_listening()
    other_ns.wait_listening()

    stats = DiscoveryStats()
    with netns.entered():
        peer, addrs = asyncio.run(_discover(group, server, seeker, stats))

    assert (peer, addrs) == (server.peer_id, SERVED_ADDRS)
    assert stats.invalid >= 1, "the server saw the garbage datagram and dropped it"
    assert stats.answered >= 2, "the server answered the survey and, after garbage, the request"

    wait_for(
        lambda: bool(request_block(seeker.peer_id).search(casm.stdout)),
        "casm_ls to print the request sent after the garbage",
    )
    out = casm.stdout
    assert survey_block(seeker.peer_id).search(out), out
    assert response_block(server.peer_id, SERVED_ADDRS).search(out), out
    invalid = INVALID_BLOCK.search(out)
    assert invalid, out
    assert request_block(seeker.peer_id).search(out, invalid.end()), "printed after the garbage"
    assert casm.proc.poll() is None, "casm_ls kept running after an invalid packet"

    # --ns filters valid packets by namespace but still reports invalid ones.
    wait_for(lambda: bool(INVALID_BLOCK.search(other_ns.stdout)), "--ns casm_ls to report garbage")
    assert "namespace: ww" not in other_ns.stdout

    assert casm.stop() == 0, casm.err_path.read_text()
    assert other_ns.stop() == 0, other_ns.err_path.read_text()
    assert "Traceback" not in casm.err_path.read_text()


def test_casm_ls_rejects_a_bad_discover_multiaddr(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "WW_STATE_DIR": str(tmp_path),
        "DJANGO_SETTINGS_MODULE": "wwproject.settings",
    }
    proc = subprocess.run(
        [sys.executable, "manage.py", "casm_ls", "--discover", "/ip4/127.0.0.1/tcp/1"],
        cwd=PROJECT_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode != 0
    assert "not a /multicast/IFACE multiaddr" in proc.stderr


async def _find_any(group: Multiaddr, server: Identity, seeker: Identity) -> tuple[str, list[str]]:
    serving = asyncio.create_task(
        serve_surveys(identity=server, namespace="ww", group=group, addrs=lambda: SERVED_ADDRS)
    )
    try:
        return await asyncio.wait_for(
            find_peer(identity=seeker, namespace="ww", group=group, target=None, interval=0.1),
            timeout=15,
        )
    finally:
        serving.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await serving


async def _give_up_after(group: Multiaddr, seeker: Identity, seconds: float) -> set[asyncio.Task]:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(
            find_peer(identity=seeker, namespace="ww", group=group, target=None, interval=0.05),
            timeout=seconds,
        )
    return asyncio.all_tasks() - {asyncio.current_task()}  # type: ignore[operator]


def test_find_peer_without_target_finds_any_other_peer(netns: NetNS) -> None:
    group = parse_multiaddr(GROUP)
    server, seeker = Identity.generate(), Identity.generate()
    with netns.entered():
        assert asyncio.run(_find_any(group, server, seeker)) == (server.peer_id, SERVED_ADDRS)


def test_cancelled_find_peer_leaves_no_task_behind(netns: NetNS) -> None:
    with netns.entered():
        leftover = asyncio.run(_give_up_after(parse_multiaddr(GROUP), Identity.generate(), 0.5))
    assert leftover == set()


def test_casm_ls_format_matches_the_seed_layout() -> None:
    from cluster_app.management.commands.casm_ls import format_packet

    sender = Identity.from_private_bytes(bytes(32))
    data = encode(Packet("ww", Survey(sender.peer_id, 255), 1), sender)
    assert format_packet(6.9, data) == (
        f"[0006] Got multicast packet ({len(data)} byte)\n"
        "  type:      survey\n"
        "  namespace: ww\n"
        f"  size:      {len(data)} bytes\n"
        f"  peer:      {sender.peer_id}\n"
        "  distance:   255\n"
        "\n"
    )
    assert format_packet(0, data, namespace="other") is None
    assert (
        format_packet(12, b"")
        == "[0012] Got multicast packet (0 byte)\n  invalid:   empty datagram\n\n"
    )
    assert re.fullmatch(
        r"\[0012\] Got multicast packet \(5 byte\)\n  invalid:   not a boot envelope: [^\n]+\n\n",
        format_packet(12, b"\x00junk") or "",
    )


async def _serve_and_send(
    group: Multiaddr, server: Identity, stats: DiscoveryStats, datagrams: list[bytes]
) -> None:
    serving = asyncio.create_task(
        serve_surveys(
            identity=server, namespace="ww", group=group, addrs=lambda: SERVED_ADDRS, stats=stats
        )
    )
    try:
        # serve_surveys has joined the group once it sees our probe (an
        # other-namespace packet, ignored and counted).
        probe_sender = Identity.generate()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 15
        while stats.reasons["other-namespace"] == 0:
            assert loop.time() < deadline, "serve_surveys never joined the group"
            await _send(group, encode(Packet("probe", Request(probe_sender.peer_id)), probe_sender))
            await asyncio.sleep(0.05)
        before = stats.received
        await _send(group, *datagrams)
        deadline = loop.time() + 10
        while stats.received < before + len(datagrams) and loop.time() < deadline:
            await asyncio.sleep(0.05)
    finally:
        serving.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await serving


def test_replayed_stale_forged_and_foreign_packets_are_dropped_counted_and_marked(
    netns: NetNS, tmp_path: Path
) -> None:
    group = parse_multiaddr(GROUP)
    server, sender, forger = Identity.generate(), Identity.generate(), Identity.generate()
    fresh = encode(Packet("ww", Request(sender.peer_id)), sender)
    stale = encode(Packet("ww", Request(sender.peer_id), now_ms() - 120_000), sender)
    future = encode(Packet("ww", Request(sender.peer_id), now_ms() + 120_000), sender)
    payload, _ = _split(encode(Packet("ww", Request(sender.peer_id)), sender))
    forged = _envelope(payload, forger.sign(SIGNATURE_DOMAIN + payload))  # sender's ID, not key
    foreign = encode(Packet("elsewhere", Request(sender.peer_id)), sender)
    datagrams = [fresh, fresh, stale, future, forged, GARBAGE, foreign]

    casm = CasmLs(netns, tmp_path, "casm_ls_replay")
    casm.wait_listening()
    stats = DiscoveryStats()
    with netns.entered():
        asyncio.run(_serve_and_send(group, server, stats, datagrams))

    assert stats.answered == 1, "only the first, fresh request is answered"
    assert stats.reasons["replayed"] == 1
    assert stats.reasons["stale"] == 1
    assert stats.reasons["future"] == 1
    assert stats.reasons["bad-signature"] == 1
    assert stats.reasons["malformed"] == 1
    assert stats.reasons["other-namespace"] >= 2  # the probe(s) and `foreign`
    assert stats.invalid == 5

    wait_for(lambda: "replayed packet" in casm.stdout, "casm_ls to mark the replay")
    wait_for(lambda: casm.stdout.count("invalid:") >= 5, "casm_ls to mark all five")
    out = casm.stdout
    assert re.search(
        rf"  invalid:   replayed packet \(stamp \d+ not newer than \d+\) from {sender.peer_id}\n",
        out,
    ), out
    assert re.search(r"  invalid:   stale packet \(stamp \d+ is 12\d\.\d s behind local", out), out
    assert re.search(r"  invalid:   future packet \(stamp \d+ is 1[12]\d\.\d s ahead of", out), out
    assert f"  invalid:   bad signature for peer {sender.peer_id}\n" in out
    assert "namespace: elsewhere" in out  # casm_ls without --ns shows every namespace
    assert request_block(sender.peer_id).search(out), "the fresh request is shown as valid"
    assert casm.proc.poll() is None
    assert casm.stop() == 0
    assert "Traceback" not in casm.err_path.read_text()


def _split(data: bytes) -> tuple[bytes, bytes]:
    env = schema.boot.Envelope.from_bytes_packed(data)
    return bytes(env.payload), bytes(env.signature)


def _envelope(payload: bytes, signature: bytes) -> bytes:
    return schema.boot.Envelope.new_message(payload=payload, signature=signature).to_bytes_packed()
