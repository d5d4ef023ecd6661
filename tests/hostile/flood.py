"""Pieces of the connection-flood tests: a gateway started with a chosen
descriptor limit, floods of held connections from other loopback addresses
of the namespace, the gateway's resident memory, and the good task every
test ends with.

Every socket is made inside the test's namespace (its 127.0.0.0/8 is all
local, so 127.0.0.2, 127.0.0.3, ... are sources other than the legit
client's 127.0.0.1) and closed by the test.
"""

from __future__ import annotations

import contextlib
import resource
import select
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from tests.e2e.cluster import MANAGE, PROJECT_ROOT, Cluster, Proc, seed_form
from tests.netns import NetNS

HASH_WASM = PROJECT_ROOT / "hash.wasm"
RSS_BOUND_MB = 500.0  # issue 15's bound for the gateway under any attack


class LimitedCluster(Cluster):
    """A Cluster whose gateway starts with RLIMIT_NOFILE = `nofile` (soft,
    hard), as `ulimit -n` in the shell that started it would."""

    def __init__(
        self, netns: NetNS, state_dir: Path, *, nofile: tuple[int, int] | None, **env: str
    ) -> None:
        super().__init__(netns, state_dir, **env)
        self.nofile = nofile

    def manage(self, *args: str, stderr: Any = None, netns: NetNS | None = None) -> Proc:
        if args[0] != "rungateway" or self.nofile is None:
            return super().manage(*args, stderr=stderr, netns=netns)
        nofile = self.nofile
        log = open(self.state_dir / f"{args[0]}-{time.monotonic_ns()}.log", "w")
        popen = (netns or self.netns).spawn(
            [sys.executable, MANAGE, *args],
            env=self.env,
            cwd=PROJECT_ROOT,
            stdout=subprocess.PIPE,
            stderr=stderr if stderr is not None else log,
            text=True,
            preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_NOFILE, nofile),
        )
        return Proc(popen)

    @property
    def gateway_pid(self) -> int:
        assert self.gateway is not None
        return self.gateway.pid

    def rpc_port(self) -> int:
        assert self.gateway is not None
        line = self.gateway.wait_for_line(lambda s: s.strip().startswith("rpc:"), 10)
        return int(line.split()[1].rsplit("/", 1)[1])


def open_files_limit(pid: int) -> tuple[int, int]:
    """The soft and hard RLIMIT_NOFILE of a running process."""
    for line in Path(f"/proc/{pid}/limits").read_text().splitlines():
        if line.startswith("Max open files"):
            soft, hard = line.split()[3:5]
            return int(soft), int(hard)
    raise AssertionError(f"no open-file limit for pid {pid}")


def open_fds(pid: int) -> int:
    return len(list(Path(f"/proc/{pid}/fd").iterdir()))


def sources(count: int) -> list[str]:
    """Loopback addresses other than 127.0.0.1, for attackers."""
    return [f"127.0.0.{2 + i}" for i in range(count)]


def connect_many(
    netns: NetNS, port: int, n: int, from_ips: list[str], timeout: float = 2.0
) -> list[socket.socket]:
    """Up to `n` TCP connections to 127.0.0.1:`port`, spread over `from_ips`
    (round robin), all dialed at once. A connect the server's backlog has
    not taken within `timeout` is given up; the connections made are
    returned (blocking again), for the caller to close."""
    pending: dict[int, socket.socket] = {}
    with netns.entered():
        for i in range(n):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.setblocking(False)
            try:
                sock.bind((from_ips[i % len(from_ips)], 0))
            except OSError:
                sock.close()
                raise
            sock.connect_ex(("127.0.0.1", port))
            pending[sock.fileno()] = sock
    made: list[socket.socket] = []
    poller = select.poll()
    for fd in pending:
        poller.register(fd, select.POLLOUT)
    deadline = time.monotonic() + timeout
    while pending and time.monotonic() < deadline:
        for fd, _event in poller.poll(100):
            sock = pending.pop(fd)
            poller.unregister(fd)
            if sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) == 0:
                sock.setblocking(True)
                made.append(sock)
            else:
                sock.close()
    for sock in pending.values():
        sock.close()
    return made


def tls_handshake_many(
    netns: NetNS, port: int, n: int, from_ips: list[str], timeout: float = 10.0
) -> list[ssl.SSLSocket]:
    """Up to `n` TLS 1.3 connections to the RPC port that complete the
    handshake (anyone may, in an open cluster) and then say nothing."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    context.minimum_version = ssl.TLSVersion.TLSv1_3
    made: list[ssl.SSLSocket] = []
    for sock in connect_many(netns, port, n, from_ips, timeout):
        sock.settimeout(timeout)
        try:
            made.append(context.wrap_socket(sock, server_hostname="ww-gateway"))
        except OSError:
            sock.close()
    return made


def closed_by_peer(sock: socket.socket, received: bytearray | None = None) -> bool:
    """Whether the other end has closed (EOF or reset), without blocking;
    what it sent before closing (a 408, TLS records) is read into
    `received` when given."""
    if sock.fileno() < 0:
        return True
    # poll, not select: a flood's descriptors run past select's FD_SETSIZE.
    poller = select.poll()
    poller.register(sock, select.POLLIN)
    try:
        while True:
            if not poller.poll(0):
                return False
            sock.setblocking(False)
            try:
                data = sock.recv(65536)
            finally:
                sock.setblocking(True)
            if not data:
                return True
            if received is not None:
                received += data
    except (ssl.SSLWantReadError, BlockingIOError):
        return False
    except OSError:
        return True


class Slowloris:
    """Holds `n` half-sent HTTP requests open from `source` on a thread: each
    sends a request line and then one more header line a second, never the
    blank line that ends the headers; a connection the server closes is
    replaced on the next tick. Counts how many the server closed with a 408
    (timed out), how many it closed without answering (refused), and the
    most it held open from one tick to the next."""

    def __init__(self, netns: NetNS, port: int, n: int, source: str) -> None:
        import threading

        self.netns, self.port, self.n, self.source = netns, port, n, source
        self.timed_out = 0
        self.refused = 0
        self.most_held = 0
        self._socks: dict[socket.socket, bytearray] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> Slowloris:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        close_all(list(self._socks))

    def _run(self) -> None:
        while not self._stop.is_set():
            for sock, received in list(self._socks.items()):
                if closed_by_peer(sock, received) or not self._send(sock, b"X-Slow: 1\r\n"):
                    closed_by_peer(sock, received)
                    if received.startswith(b"HTTP/1.1 408"):
                        self.timed_out += 1
                    else:
                        self.refused += 1
                    del self._socks[sock]
                    sock.close()
            # Those left have been held since the last tick, a second ago.
            self.most_held = max(self.most_held, len(self._socks))
            self._top_up()
            self._stop.wait(1.0)

    def _top_up(self) -> None:
        fresh = connect_many(self.netns, self.port, self.n - len(self._socks), [self.source], 1.0)
        for sock in fresh:
            if self._send(sock, b"GET /tasks HTTP/1.1\r\nHost: 127.0.0.1\r\n"):
                self._socks[sock] = bytearray()
            else:
                self.refused += 1
                sock.close()

    @staticmethod
    def _send(sock: socket.socket, data: bytes) -> bool:
        try:
            sock.sendall(data)
        except OSError:
            return False
        return True


def wait_all_closed(
    socks: list[Any], timeout: float, *, tick: Callable[[list[Any]], None] | None = None
) -> list[Any]:
    """Wait until the server has closed every socket (calling `tick` with
    the ones still open, about once a second); returns those still open."""
    open_socks = list(socks)
    deadline = time.monotonic() + timeout
    last_tick = 0.0
    while open_socks and time.monotonic() < deadline:
        open_socks = [s for s in open_socks if not closed_by_peer(s)]
        if tick is not None and time.monotonic() - last_tick >= 1.0:
            tick(open_socks)
            last_tick = time.monotonic()
        time.sleep(0.1)
    return open_socks


def close_all(socks: list[Any]) -> None:
    for sock in socks:
        with contextlib.suppress(OSError):
            sock.close()


@contextlib.contextmanager
def sampling(measure: Callable[[], float], interval: float = 0.2) -> Iterator[list[float]]:
    """Samples of `measure()` taken on a thread while the block runs."""
    import threading

    samples: list[float] = []
    stop = threading.Event()

    def sample() -> None:
        while not stop.is_set():
            with contextlib.suppress(OSError, AssertionError):
                samples.append(measure())
            stop.wait(interval)

    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    try:
        yield samples
    finally:
        stop.set()
        thread.join()


def run_good_task(cluster: Cluster, task_id: str) -> dict[str, Any]:
    """The seed's hash puzzle, one run: it must succeed with run(0, 3) = 2832."""
    response = cluster.request(
        "POST",
        "/tasks",
        data=seed_form(id=task_id, start="0", repeats="1", delay="0", difficulty="3"),
        files={"wasm": ("hash.wasm", HASH_WASM.read_bytes())},
    )
    assert response.status_code == 201, response.text

    def done() -> dict[str, Any] | None:
        body = cluster.request("GET", f"/tasks/{task_id}").json()
        return body if body["completions"] == 1 else None

    body = cluster.wait_for(done, 60, f"the good task {task_id} to succeed")
    assert [run["result"] for run in body["runs"]] == ["2832"], body
    return body
