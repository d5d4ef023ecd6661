"""Progress lines of a bench run, on stderr (stdout carries the JSON
document and the table)."""

from __future__ import annotations

import sys
import time


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)
