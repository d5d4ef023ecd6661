"""py-spy profiles of our processes while a measure runs, and a summary of
the hot spots (self and inclusive share of samples per function)."""

from __future__ import annotations

import contextlib
import os
import signal
import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from bench.procs import Procs

ROOT = Path(__file__).resolve().parents[1]


@contextlib.contextmanager
def record(
    procs: Procs, targets: dict[str, int], out_dir: Path, label: str
) -> Iterator[dict[str, Path]]:
    """py-spy record (raw collapsed stacks, 200 Hz, GIL-holding and idle-excluded
    samples) of each target PID until the block ends."""
    py_spy = str(Path(sys.executable).with_name("py-spy"))
    files: dict[str, Path] = {}
    spies = []
    for name, pid in targets.items():
        path = out_dir / f"{label}-{name}.txt"
        files[name] = path
        spies.append(
            procs.start(
                f"py-spy-{label}-{name}",
                [
                    py_spy,
                    "record",
                    "--pid",
                    str(pid),
                    "--rate",
                    "200",
                    "--format",
                    "raw",
                    "--output",
                    str(path),
                    "--threads",
                ],
                env=dict(os.environ),
                cwd=ROOT,
            )
        )
    import time

    time.sleep(1.0)  # let py-spy attach
    try:
        yield files
    finally:
        for spy in spies:
            with contextlib.suppress(ProcessLookupError):
                os.kill(spy.pid, signal.SIGINT)
        for spy in spies:
            with contextlib.suppress(Exception):
                spy.popen.wait(20)
            procs.stop(spy)


def _frames(stack: str) -> list[str]:
    return [f for f in stack.split(";") if f]


def _short(frame: str) -> str:
    # "func (path/to/file.py:123)" -> "func (file.py)" relative to site-packages/project
    name, _, where = frame.partition(" (")
    where = where.rstrip(")")
    path, _, _line = where.rpartition(":")
    for marker in ("site-packages/", "/work/main/", "lib/python3.11/"):
        if marker in path:
            path = path.split(marker, 1)[1]
            break
    return f"{name} ({path})"


IDLE_LEAVES = {
    "Condition.wait (threading.py)",
    "EpollSelector.select (selectors.py)",
    "_worker (concurrent/futures/thread.py)",
    "Event.wait (threading.py)",
    "Thread._wait_for_tstate_lock (threading.py)",
    "select (selectors.py)",
}


def _role(frames: list[str]) -> str:
    text = ";".join(frames)
    if "SyncToAsync.thread_handler" in text:
        return "sync_to_async thread (DB, Django views)"
    if "BaseEventLoop.run_forever" in text or "Runner.run" in text:
        return "event loop thread"
    if "Executor._tick" in text:
        return "epoch ticker"
    if "_WorkItem.run" in text or "_worker (concurrent" in text:
        return "other pool threads"
    return "other"


def summarize(files: dict[str, Path], top: int = 25, rate: int = 200) -> dict[str, Any]:
    """Per profile: busy share of each thread role, and the hot spots among
    busy samples only (a sample whose innermost frame is a wait is idle)."""
    out: dict[str, Any] = {}
    for name, path in files.items():
        if not path.exists():
            out[name] = {"error": "no profile written"}
            continue
        self_c: Counter[str] = Counter()
        incl_c: Counter[str] = Counter()
        role_all: Counter[str] = Counter()
        role_busy: Counter[str] = Counter()
        threads: set[str] = set()
        busy = total = 0
        for line in path.read_text().splitlines():
            stack, _, count = line.rpartition(" ")
            if not count.isdigit():
                continue
            n = int(count)
            frames = _frames(stack)
            if frames and frames[0].startswith("thread "):
                threads.add(frames[0])
                frames = frames[1:]
            if not frames:
                continue
            total += n
            short = [_short(f) for f in frames]
            role = _role(short)
            role_all[role] += n
            if short[-1] in IDLE_LEAVES:
                continue
            busy += n
            role_busy[role] += n
            self_c[short[-1]] += n
            for fr in set(short):
                incl_c[fr] += n
        out[name] = {
            "samples": total,
            "busy_samples": busy,
            "threads": len(threads),
            "busy_seconds_by_role": {r: round(role_busy[r] / rate, 2) for r in role_all},
            "sampled_seconds_by_role": {r: round(v / rate, 2) for r, v in role_all.items()},
            "self_pct_of_busy": [
                (k, round(100 * v / max(busy, 1), 1)) for k, v in self_c.most_common(top)
            ],
            "inclusive_pct_of_busy": [
                (k, round(100 * v / max(busy, 1), 1)) for k, v in incl_c.most_common(top * 3)
            ],
        }
    return out


def render(report: dict[str, Any]) -> str:
    lines = []
    for measure, body in report.items():
        lines.append(f"## {measure}: {body['result']}")
        for proc, prof in body["profiles"].items():
            if "error" in prof:
                lines.append(f"### {proc}: {prof['error']}")
                continue
            lines.append(f"### {proc}: {prof['busy_samples']} busy of {prof['samples']} samples")
            lines.append(f"busy s by thread role: {prof['busy_seconds_by_role']}")
            lines.append(f"sampled s by thread role: {prof['sampled_seconds_by_role']}")
            lines.append("self % of busy samples:")
            lines += [f"  {pct:5.1f}  {fn}" for fn, pct in prof["self_pct_of_busy"][:20]]
            lines.append("inclusive % of busy samples:")
            lines += [f"  {pct:5.1f}  {fn}" for fn, pct in prof["inclusive_pct_of_busy"][:60]]
    return "\n".join(lines)
