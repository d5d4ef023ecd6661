from __future__ import annotations

import pytest

from tasks_app.progress import task_state


@pytest.mark.parametrize(
    ("counts", "state"),
    [
        ({"runs": 3, "finished": 0, "succeeded": 0, "failed": 0, "running": 0}, "scheduled"),
        ({"runs": 3, "finished": 0, "succeeded": 0, "failed": 0, "running": 1}, "running"),
        ({"runs": 3, "finished": 1, "succeeded": 1, "failed": 0, "running": 0}, "running"),
        ({"runs": 3, "finished": 3, "succeeded": 3, "failed": 0, "running": 0}, "succeeded"),
        ({"runs": 3, "finished": 3, "succeeded": 2, "failed": 1, "running": 0}, "failed"),
        ({"runs": 2, "finished": 2, "succeeded": 1, "failed": 0, "running": 0}, "cancelled"),
    ],
)
def test_task_state_from_run_counts(counts: dict[str, int], state: str) -> None:
    assert task_state(**counts) == state
