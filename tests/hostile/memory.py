"""A process's memory as the hostile suite bounds it."""

from __future__ import annotations

from pathlib import Path


def rss_mb(pid: int) -> float:
    """VmRSS of a process, in MB (from /proc)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError(f"no VmRSS for pid {pid}")
