"""`make run` / `runcluster` as a user's terminal treats it: closing the
terminal (SIGHUP to the process group) or killing runcluster outright
leaves no gateway or worker behind, and a second cluster on the same state
directory or HTTP port fails at once, non-zero, saying why, while the first
keeps serving. Real processes in a private network namespace (the workers
find the gateway by multicast)."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.e2e.cluster import MANAGE, PROJECT_ROOT, Proc
from tests.netns import NetNS

HTTP = "127.0.0.1:8080"  # the namespace's own loopback: no clash with anything
RUNNING = "ww-scheduler is running"


def _env(state_dir: Path) -> dict[str, str]:
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "wwproject.settings",
        "WW_STATE_DIR": str(state_dir),
        "PYTHONUNBUFFERED": "1",
    }
    env.pop("DATABASE_URL", None)
    env.pop("REDIS_URL", None)
    return env


def _ppid(pid: int) -> int | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return int(stat.rpartition(")")[2].split()[1])


def _descendants(root: int) -> set[int]:
    """Every live process below `root` (children, their children, ...)."""
    parents = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and (ppid := _ppid(int(entry.name))) is not None:
            parents[int(entry.name)] = ppid
    found: set[int] = set()
    frontier = {root}
    while frontier:
        frontier = {pid for pid, ppid in parents.items() if ppid in frontier} - found
        found |= frontier
    return {pid for pid in found if _alive(pid)}


def _alive(pid: int) -> bool:
    """Running, not a zombie: an orphan that has exited may wait a while for
    init to reap it, and it holds nothing any more."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rpartition(")")[2].split()[0] != "Z"


def _node_pids(root: int) -> set[int]:
    """The gateway and worker processes below `root`."""
    nodes = set()
    for pid in _descendants(root):
        with contextlib.suppress(OSError):
            argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
            if b"rungateway" in argv or b"runworker" in argv:
                nodes.add(pid)
    return nodes


def _cmdline(pid: int) -> bytes:
    return Path(f"/proc/{pid}/cmdline").read_bytes()


def _wait_gone(pids: set[int], timeout: float) -> set[int]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and any(_alive(p) for p in pids):
        time.sleep(0.1)
    return {p for p in pids if _alive(p)}


def _kill(pids: set[int]) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def _migrate(netns: NetNS, state_dir: Path) -> None:
    proc = netns.spawn(
        [sys.executable, MANAGE, "migrate", "--noinput", "-v", "0"],
        env=_env(state_dir),
        cwd=PROJECT_ROOT,
    )
    assert proc.wait(timeout=120) == 0


def _spawn(netns: NetNS, state_dir: Path, argv: list[str], log: Path) -> Proc:
    """`argv` in its own session and process group, as a terminal's job is."""
    with log.open("w") as err:
        popen = netns.spawn(
            argv,
            env=_env(state_dir),
            cwd=PROJECT_ROOT,
            stdout=subprocess.PIPE,
            stderr=err,
            text=True,
            start_new_session=True,
        )
    return Proc(popen)


def _make_run(netns: NetNS, state_dir: Path, http: str, log: Path, workers: int = 2) -> Proc:
    # `-o venv`: the venv is there already; never reinstall it from a test.
    argv = ["make", "-o", "venv", "run", f"HTTP={http}", f"WORKERS={workers}"]
    return _spawn(netns, state_dir, argv, log)


def _runcluster(netns: NetNS, state_dir: Path, http: str, log: Path, workers: int = 2) -> Proc:
    argv = [sys.executable, MANAGE, "runcluster", "--workers", str(workers), "--http", http]
    return _spawn(netns, state_dir, argv, log)


def _nodes_of_test(tmp_path: Path) -> set[int]:
    """Every gateway or worker started with a state directory of this test,
    wherever it ended up in the process tree."""
    nodes = set()
    mark = f"WW_STATE_DIR={tmp_path}/".encode()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            argv = (entry / "cmdline").read_bytes().split(b"\0")
            if b"rungateway" in argv or b"runworker" in argv:
                if any(v.startswith(mark) for v in (entry / "environ").read_bytes().split(b"\0")):
                    nodes.add(int(entry.name))
    return nodes


@contextlib.contextmanager
def _cleanup(tmp_path: Path) -> Iterator[list[Proc]]:
    """Yields a list the test adds its processes to; on the way out (failure
    included) they, their process groups and every node process of this
    test are killed."""
    procs: list[Proc] = []
    try:
        yield procs
    finally:
        for proc in procs:
            if proc.popen.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.popen.wait(10)
        _kill(_nodes_of_test(tmp_path))


def _up(proc: Proc, log: Path) -> set[int]:
    try:
        proc.wait_for_line(lambda s: RUNNING in s, 180)
    except AssertionError as exc:
        raise AssertionError(f"{exc}\nstderr:\n{log.read_text()}") from None
    nodes = _node_pids(proc.pid)
    assert len(nodes) == 3, f"a gateway and two workers, got {nodes}"
    return nodes


def _get_tasks(netns: NetNS, http: str) -> int:
    with netns.entered(), httpx.Client(base_url=f"http://{http}", timeout=30) as client:
        return client.get("/tasks").status_code


def test_sighup_to_make_run_stops_every_process(netns: NetNS, tmp_path: Path) -> None:
    """Closing the terminal: SIGHUP to `make run`'s process group."""
    log = tmp_path / "make.err"
    with _cleanup(tmp_path) as procs:
        make = _make_run(netns, tmp_path / "state", HTTP, log)
        procs.append(make)
        nodes = _up(make, log)
        os.killpg(make.pid, signal.SIGHUP)
        assert _wait_gone(nodes, 30) == set(), "gateway or worker still running after SIGHUP"
        make.popen.wait(30)


def test_children_die_with_a_killed_runcluster(netns: NetNS, tmp_path: Path) -> None:
    _migrate(netns, tmp_path / "state")
    log = tmp_path / "runcluster.err"
    with _cleanup(tmp_path) as procs:
        cluster = _runcluster(netns, tmp_path / "state", HTTP, log)
        procs.append(cluster)
        nodes = _up(cluster, log)
        os.kill(cluster.pid, signal.SIGKILL)  # no chance to stop anything itself
        cluster.popen.wait(10)
        assert _wait_gone(nodes, 60) == set(), "gateway or worker outlived runcluster"


def test_a_second_cluster_fails_at_once_and_the_first_keeps_serving(
    netns: NetNS, tmp_path: Path
) -> None:
    state = tmp_path / "state"
    first_log = tmp_path / "first.err"
    with _cleanup(tmp_path) as procs:
        first = _make_run(netns, state, HTTP, first_log)
        procs.append(first)
        nodes = _up(first, first_log)
        gateway_pid = next(p for p in nodes if b"rungateway" in _cmdline(p))

        # The same state directory, another port: the state directory's lock.
        same_dir_log = tmp_path / "same-dir.err"
        same_dir = _make_run(netns, state, "127.0.0.1:8081", same_dir_log)
        procs.append(same_dir)
        assert same_dir.popen.wait(120) != 0
        message = same_dir_log.read_text()
        assert f"state directory {state.resolve()} is in use: pid {gateway_pid} holds" in message
        assert RUNNING not in same_dir.output()

        # Another state directory, the same port.
        _migrate(netns, tmp_path / "other")
        same_port_log = tmp_path / "same-port.err"
        same_port = _runcluster(netns, tmp_path / "other", HTTP, same_port_log)
        procs.append(same_port)
        assert same_port.popen.wait(120) != 0
        assert f"HTTP address {HTTP} is already in use" in same_port_log.read_text()
        assert RUNNING not in same_port.output()

        assert _nodes_of_test(tmp_path) == nodes, "only the first cluster's processes run"
        assert _get_tasks(netns, HTTP) == 200
        assert first.popen.poll() is None


@pytest.mark.parametrize("clash", ["state-dir", "http-port"])
def test_a_second_gateway_fails_at_once(netns: NetNS, tmp_path: Path, clash: str) -> None:
    state = tmp_path / "state"
    _migrate(netns, state)
    first_log = tmp_path / "first.err"
    with _cleanup(tmp_path) as procs:
        first = _spawn(
            netns,
            state,
            [sys.executable, MANAGE, "rungateway", "--http", HTTP, "--no-discovery"],
            first_log,
        )
        procs.append(first)
        first.wait_for_line(lambda s: s.strip().startswith("http:"), 120)
        other_state, http = (
            (state, "127.0.0.1:8081")
            if clash == "state-dir"
            else (
                tmp_path / "other",
                HTTP,
            )
        )
        if other_state != state:
            _migrate(netns, other_state)
        second_log = tmp_path / "second.err"
        second = _spawn(
            netns,
            other_state,
            [sys.executable, MANAGE, "rungateway", "--http", http, "--no-discovery"],
            second_log,
        )
        procs.append(second)
        assert second.popen.wait(120) != 0
        message = second_log.read_text()
        if clash == "state-dir":
            assert f"pid {first.pid} holds the lock {state.resolve() / 'gateway.lock'}" in message
        else:
            assert f"HTTP address {HTTP} is already in use" in message
        assert second.lines == [], "no peer ID is printed by a gateway that cannot start"
        assert first.popen.poll() is None
        assert _get_tasks(netns, HTTP) == 200


def test_runcluster_fails_when_its_gateway_cannot_start(netns: NetNS, tmp_path: Path) -> None:
    """A gateway that exits while starting (here: its fixed RPC port is
    taken) makes runcluster exit non-zero without saying it is running."""
    state = tmp_path / "state"
    _migrate(netns, state)
    with netns.entered():
        taken = socket.socket()
        taken.bind(("127.0.0.1", 0))
        taken.listen()
    port = taken.getsockname()[1]
    log = tmp_path / "runcluster.err"
    with _cleanup(tmp_path) as procs, taken:
        argv = [sys.executable, MANAGE, "runcluster", "--http", HTTP]
        with log.open("w") as err:
            popen = netns.spawn(
                argv,
                env={**_env(state), "WW_LISTEN": f"/ip4/127.0.0.1/tcp/{port}"},
                cwd=PROJECT_ROOT,
                stdout=subprocess.PIPE,
                stderr=err,
                text=True,
                start_new_session=True,
            )
        cluster = Proc(popen)
        procs.append(cluster)
        assert cluster.popen.wait(120) != 0
        message = log.read_text()
        assert f"RPC address 127.0.0.1:{port} is already in use" in message
        assert "the gateway exited (code 1) before it was up" in message
        assert RUNNING not in cluster.output()
        assert _nodes_of_test(tmp_path) == set()
