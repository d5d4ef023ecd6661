"""Websocket clients that never read cannot hold the gateway's memory.

Ten raw sockets open /ws/tasks/ and then read nothing (a tiny receive
buffer, so the kernel holds next to nothing for them) while a task of
2,000 runs, each printing 64 KiB, streams its events. The gateway's RSS
stays under the documented bound, each slow socket is closed by the
gateway with code 4008 ("slow reader", after what it had been sent), one
that never reads at all is disconnected after WW_WS_CLOSE_GRACE, a normal
reader gets every event, RSS comes back near its baseline, and the cluster
serves a good task. Before the bound, the same ten sockets took the
gateway to 1.4 GB. Events here carry whole results, as they did then (by
default they carry 256 bytes: tests/api/test_run_events.py)."""

from __future__ import annotations

import base64
import contextlib
import json
import os
import socket
import struct
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import wasmtime
from websockets.sync.client import connect

from tests.e2e.cluster import HTTP, PROJECT_ROOT, Cluster, running_cluster, seed_form
from tests.hostile.memory import rss_mb

RSS_BOUND_MB = 500  # README, Security: the bound under attack on this machine
SLOW = 10
RUNS = 2000
GRACE = 20.0  # WW_WS_CLOSE_GRACE for this gateway
# WW_WS_STALL for this gateway (default 5 s): the normal reader, a Python
# thread parsing 128 MB of events, fell more than the buffer behind for 5 s
# on a loaded machine and was closed as slow; the ten that never read are
# closed whatever the stall.
STALL = 15.0
SLOW_READER_CODE = 4008
EVENT_BYTES = 65536

# A WASI command that prints 64 KiB of "y" once.
PRINT_64K = """
(module
  (import "wasi_snapshot_preview1" "fd_write" (func $write (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 2)
  (func (export "_start")
    (i32.store (i32.const 0) (i32.const 16))
    (i32.store (i32.const 4) (i32.const 65536))
    (memory.fill (i32.const 16) (i32.const 121) (i32.const 65536))
    (drop (call $write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8)))))
"""


@contextlib.contextmanager
def sampling_rss(pid: int) -> Iterator[list[float]]:
    samples: list[float] = []
    stop = threading.Event()

    def sample() -> None:
        while not stop.is_set():
            with contextlib.suppress(OSError, AssertionError):
                samples.append(rss_mb(pid))
            stop.wait(0.2)

    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    try:
        yield samples
    finally:
        stop.set()
        thread.join()


def slow_socket(cluster: Cluster) -> socket.socket:
    """A websocket on /ws/tasks/, handshake done, that then reads nothing."""
    host, port = HTTP.rsplit(":", 1)
    with cluster.netns.entered():
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.connect((host, int(port)))
    key = base64.b64encode(os.urandom(16)).decode()
    sock.sendall(
        (
            f"GET /ws/tasks/ HTTP/1.1\r\nHost: {HTTP}\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
            "Sec-WebSocket-Version: 13\r\n\r\n"
        ).encode()
    )
    head = b""
    sock.settimeout(10)
    while b"\r\n\r\n" not in head:  # byte by byte: nothing past the headers is taken
        byte = sock.recv(1)
        assert byte, f"closed during the handshake: {head!r}"
        head += byte
    assert head.startswith(b"HTTP/1.1 101"), head
    return sock


def read_until_close(sock: socket.socket, timeout: float = 30) -> tuple[int, str, int]:
    """Read frames (the server's are unmasked) until a close frame: its code,
    its reason, and how many text frames came before it."""
    sock.settimeout(timeout)
    buffer = bytearray()

    def take(n: int) -> bytes:
        while len(buffer) < n:
            chunk = sock.recv(65536)
            if not chunk:
                raise AssertionError("connection ended without a close frame")
            buffer.extend(chunk)
        out = bytes(buffer[:n])
        del buffer[:n]
        return out

    frames = 0
    while True:
        first, second = take(2)
        length = second & 0x7F
        if length == 126:
            (length,) = struct.unpack("!H", take(2))
        elif length == 127:
            (length,) = struct.unpack("!Q", take(8))
        payload = take(length)
        opcode = first & 0x0F
        if opcode == 0x8:
            (code,) = struct.unpack("!H", payload[:2])
            return code, payload[2:].decode(), frames
        if opcode == 0x1:
            frames += 1


def established_from(pid: int, port: int) -> bool:
    """Whether the gateway (in its namespace) still holds a connection
    whose remote end is local port `port`."""
    for line in Path(f"/proc/{pid}/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        remote, state = fields[2], fields[3]
        if state == "01" and int(remote.split(":")[1], 16) == port:
            return True
    return False


def slow_readers_closed(cluster: Cluster) -> int:
    return cluster.gateway_log().count("slow reader,")


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Cluster]:
    # Events as heavy as the attack's (the whole 64 KiB result in each):
    # the default, 256 bytes, makes 2,000 runs' events fit in the kernel's
    # socket buffers, and the bound on the socket would not be reached.
    with running_cluster(
        tmp_path,
        workers=2,
        concurrency=2,
        WW_WS_CLOSE_GRACE=str(GRACE),
        WW_WS_STALL=str(STALL),
        WW_EVENT_TEXT_BYTES=str(EVENT_BYTES),
    ) as cluster:
        yield cluster


def test_ten_sockets_that_never_read_are_closed_and_memory_stays_bounded(
    cluster: Cluster,
) -> None:
    assert cluster.gateway is not None
    pid = cluster.gateway.pid
    time.sleep(2)  # the gateway settles after start-up
    baseline = rss_mb(pid)

    # A normal reader, reading all along on its own thread.
    with cluster.netns.entered():
        reader = connect(f"ws://{HTTP}/ws/tasks/", open_timeout=10, proxy=None)
    succeeded: dict[int, dict[str, Any]] = {}
    reader_closed: list[object] = []

    def read() -> None:
        try:
            for frame in reader:
                event = json.loads(frame)
                if event["task"] == "chatty" and event["state"] == "succeeded":
                    succeeded[event["index"]] = event
        except Exception as exc:  # noqa: BLE001 - recorded, asserted below
            reader_closed.append(exc)

    reading = threading.Thread(target=read, daemon=True)
    reading.start()
    slow = [slow_socket(cluster) for _ in range(SLOW)]
    try:
        with sampling_rss(pid) as samples:
            response = cluster.request(
                "POST",
                "/tasks",
                data=seed_form(
                    id="chatty", start="0.5", delay="0", repeats=str(RUNS), duration="10"
                ),
                files={"wasm": ("print.wasm", bytes(wasmtime.wat2wasm(PRINT_64K)))},
            )
            assert response.status_code == 201, response.text
            try:
                cluster.wait_for(
                    lambda: slow_readers_closed(cluster) >= SLOW, 120, "ten slow readers closed"
                )
            except AssertionError:
                task = cluster.request("GET", "/tasks/chatty?runs_limit=1").json()
                raise AssertionError(
                    f"{slow_readers_closed(cluster)} slow readers closed;"
                    f" completions {task['completions']}; events read {len(succeeded)};"
                    f" gateway log:\n{cluster.gateway_log()[-3000:]}"
                ) from None
            # Now they read: what they were sent, then the close and why.
            for sock in slow[:-1]:
                code, reason, frames = read_until_close(sock)
                assert (code, reason) == (SLOW_READER_CODE, "slow reader")
                assert 0 < frames < RUNS * 2  # closed before the end of the stream
            try:
                cluster.wait_for(lambda: len(succeeded) >= RUNS, 120, "every run's event")
            except AssertionError:
                task = cluster.request("GET", "/tasks/chatty?runs_limit=1").json()
                closes = [ln for ln in cluster.gateway_log().splitlines() if "slow reader" in ln]
                raise AssertionError(
                    f"reader: {reader_closed}; events {len(succeeded)};"
                    f" completions {task['completions']}; closes:\n" + "\n".join(closes)
                ) from None
        peak = max(samples)
        # The last one never read at all: disconnected once the grace is over.
        never_read_port = slow[-1].getsockname()[1]
        cluster.wait_for(
            lambda: not established_from(pid, never_read_port),
            GRACE + 30,
            "the socket that never read to be disconnected",
        )
    finally:
        for sock in slow:
            sock.close()
    assert peak < RSS_BOUND_MB, f"gateway RSS peaked at {peak:.0f} MB (baseline {baseline:.0f})"

    # The normal reader got every run's event, whole.
    assert reader_closed == []
    assert sorted(succeeded) == list(range(RUNS))
    assert succeeded[0]["result"] == "y" * 65536
    assert succeeded[0]["result_truncated"] is False

    reader.close()
    reading.join(10)
    try:
        after = cluster.wait_for(
            lambda: (rss := rss_mb(pid)) < baseline + 100 and rss, 60, "RSS near its baseline"
        )
    except AssertionError:
        raise AssertionError(
            f"RSS {rss_mb(pid):.0f} MB after; baseline {baseline:.0f}, peak {peak:.0f}"
        ) from None
    print(f"gateway RSS: baseline {baseline:.0f} MB, peak {peak:.0f} MB, after {after:.0f} MB")
    run_good_task(cluster, "good-after-slow-readers")


def run_good_task(cluster: Cluster, task_id: str) -> None:
    response = cluster.request(
        "POST",
        "/tasks",
        data=seed_form(id=task_id, start="0", repeats="1", delay="0"),
        files={"wasm": ("hash.wasm", (PROJECT_ROOT / "hash.wasm").read_bytes())},
    )
    assert response.status_code == 201, response.text

    def done() -> dict[str, Any] | None:
        body = cluster.request("GET", f"/tasks/{task_id}").json()
        return body if body["completions"] == 1 else None

    body = cluster.wait_for(done, 60, f"the good task {task_id}")
    assert [run["result"] for run in body["runs"]] == ["2832"]
