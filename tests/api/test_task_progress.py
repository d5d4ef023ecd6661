"""A page of `GET /tasks` counts its tasks' progress for that page only
(selectors.with_progress): the same numbers task_list annotates over every
task."""

from __future__ import annotations

from datetime import timedelta

import pytest

from tasks_app import selectors, services
from tasks_app.models import Iteration, Task
from tests.api.forms import HASH_WASM

pytestmark = pytest.mark.django_db

FIELDS = (
    "runs_total",
    "completions",
    "runs_finished",
    "runs_failed",
    "runs_running",
    "next_due_at",
)


def test_a_page_counts_what_task_list_counts() -> None:
    states = [
        [],
        ["succeeded", "failed", "pending"],
        ["running", "timed_out", "cancelled", "succeeded"],
        ["pending", "pending"],
    ]
    for n, runs in enumerate(states):
        services.create_task(
            task_id=f"t{n}",
            description="",
            wasm=HASH_WASM,
            duration=0,
            start=n,
            delay=1,
            repeats=max(len(runs), 1),
            input=0,
            difficulty=1,
        )
        for index, state in enumerate(runs):
            Iteration.objects.filter(task_id=f"t{n}", index=index).update(state=state)
        # Succeeded runs are read from the task row, which the journal keeps.
        Task.objects.filter(pk=f"t{n}").update(succeeded_count=runs.count("succeeded"))
    expected = {t.pk: [getattr(t, f) for f in FIELDS] for t in selectors.task_list()}
    page = selectors.with_progress(list(selectors.tasks_oldest_first()[1:4]))
    assert [t.pk for t in page] == ["t1", "t2", "t3"]
    for task in page:
        assert [getattr(task, f) for f in FIELDS] == expected[task.pk], task.pk
    assert selectors.with_progress([]) == []
    assert (
        [
            getattr(t, f)
            for t in selectors.with_progress(list(selectors.tasks_oldest_first()[:1]))
            for f in FIELDS
        ]
        == expected["t0"]
        == [1, 0, 0, 0, 0, Task.objects.get(pk="t0").received_at + timedelta(seconds=0)]
    )
