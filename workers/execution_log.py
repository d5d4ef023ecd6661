"""What this worker ran, for checking it against what the gateway recorded.

One JSON object per finished run, appended to the file ``WW_EXECUTION_LOG``
names (off when empty; tests/faults/harness.py reads it). Each batch is one
write() on an O_APPEND descriptor before the results are answered, so a run
the gateway hears of is in the file even if the worker is then killed, and
workers sharing one file do not interleave lines.
"""

from __future__ import annotations

import json
import os

from workers.runs import RunOutcome, RunRequest


class ExecutionLog:
    def __init__(self, path: str, peer_id: str) -> None:
        self._fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        self._peer_id = peer_id

    def record(self, requests: list[RunRequest], outcomes: list[RunOutcome]) -> None:
        lines = []
        for request, outcome in zip(requests, outcomes, strict=True):
            task_id, _, iteration = request.run_key.rpartition("#")
            if not task_id:
                continue  # `assign`: not a scheduled run
            entry = {
                "task": task_id,
                "run": int(iteration),
                "worker": self._peer_id,
                "state": outcome.state,
                "started": outcome.started_at,
                "finished": outcome.finished_at,
                "error": outcome.error[:200],
            }
            lines.append(json.dumps(entry, separators=(",", ":")) + "\n")
        if lines:
            os.write(self._fd, "".join(lines).encode())
