"""cluster_app.lifetime with real processes: a process told to stop with
another one gets its stop signal when that one exits (by PR_SET_PDEATHSIG
when it is the parent, by watching the pid otherwise), and ends outright
if it does not stop within the grace period."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

# Arms the watch, says so, then waits; on SIGTERM prints and exits 0 (or,
# with IGNORE, ignores SIGTERM so only the grace period can end it).
CHILD = textwrap.dedent(
    """
    import os, signal, sys, time
    from cluster_app.lifetime import stop_with_parent
    watched, ignore = int(sys.argv[1]), sys.argv[2] == "IGNORE"
    def on_term(signum, frame):
        print("got SIGTERM", flush=True)
        sys.exit(0)
    signal.signal(signal.SIGTERM, signal.SIG_IGN if ignore else on_term)
    stop_with_parent(watched, grace=1.0)
    print("armed", flush=True)
    time.sleep(120)
    print("not stopped", flush=True)
    """
)

# A parent that starts CHILD (watching this parent), prints its pid, waits.
PARENT = textwrap.dedent(
    """
    import subprocess, sys, os, time
    child = subprocess.Popen([sys.executable, "-c", sys.argv[1], str(os.getpid()), "TERM"],
                             stdout=sys.stdout)
    print(child.pid, flush=True)
    time.sleep(120)
    """
)


@pytest.fixture
def spawned() -> Iterator[list[subprocess.Popen[str]]]:
    procs: list[subprocess.Popen[str]] = []
    yield procs
    for proc in procs:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def _child(watched: int, mode: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", CHILD, str(watched), mode],
        stdout=subprocess.PIPE,
        text=True,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )


@pytest.mark.parametrize(
    ("mode", "out", "code"),
    [
        ("TERM", "got SIGTERM\n", 0),  # the watcher's SIGTERM stops it
        ("IGNORE", "", 1),  # ignoring it: ended outright after the grace
    ],
    ids=["the-watched-process-exiting-stops-the-watcher", "ignoring-it-ends-after-the-grace"],
)
def test_the_watched_process_exiting_ends_the_watcher(
    spawned: list[subprocess.Popen[str]], mode: str, out: str, code: int
) -> None:
    other = subprocess.Popen(["sleep", "120"])
    spawned.append(other)
    child = _child(other.pid, mode)
    spawned.append(child)
    assert child.stdout is not None
    assert child.stdout.readline() == "armed\n"
    other.kill()
    other.wait()
    said, _ = child.communicate(timeout=30)
    assert said == out
    assert child.returncode == code


def test_a_parent_killed_outright_takes_its_child_along(
    spawned: list[subprocess.Popen[str]],
) -> None:
    parent = subprocess.Popen(
        [sys.executable, "-c", PARENT, CHILD],
        stdout=subprocess.PIPE,
        text=True,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    spawned.append(parent)
    assert parent.stdout is not None
    child_pid = int(parent.stdout.readline())
    try:
        assert parent.stdout.readline() == "armed\n"
        parent.kill()
        parent.wait()
        # The child shares the pipe: its last words end the stream.
        assert parent.stdout.read() == "got SIGTERM\n"
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(child_pid, signal.SIGKILL)
