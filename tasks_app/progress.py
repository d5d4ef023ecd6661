"""A task's overall state, from the counts of its runs. Pure."""

from __future__ import annotations


def task_state(*, runs: int, finished: int, succeeded: int, failed: int, running: int) -> str:
    """scheduled → running → succeeded | failed | cancelled.

    `finished` counts runs in any final state, `failed` those that failed
    or timed out; the rest of the finished ones were cancelled."""
    if runs > 0 and finished >= runs:
        if succeeded == runs:
            return "succeeded"
        if failed > 0:
            return "failed"
        return "cancelled"
    if finished > 0 or running > 0:
        return "running"
    return "scheduled"
