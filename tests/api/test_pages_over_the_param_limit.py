"""Pages the API serves whole (up to 1,000 tasks, 1,000 runs of a task) on
an SQLite held to 999 parameters a statement (builds before 3.32)."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator

import pytest
from django.db import connection

from tasks_app import selectors
from tasks_app.models import Task
from tests.api.forms import stored_task

pytestmark = pytest.mark.django_db


@pytest.fixture
def old_sqlite() -> Iterator[None]:
    connection.ensure_connection()
    before = connection.connection.setlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER, 999)
    yield
    connection.connection.setlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER, before)


def _task(task_id: str, repeats: int) -> None:
    stored_task(task_id, repeats=repeats)


def test_the_progress_of_a_page_of_1000_tasks_is_counted(old_sqlite: None) -> None:
    for i in range(1000):
        _task(f"t{i:04}", 1)
    tasks = selectors.with_progress(list(Task.objects.order_by("id")))
    assert {t.runs_total for t in tasks} == {1}


def test_a_page_of_1000_runs_comes_with_their_attempts(old_sqlite: None) -> None:
    _task("big", 1000)
    task = selectors.task_detail("big", runs_limit=1000)
    assert [run.index for run in task.runs_page] == list(range(1000))
    assert all(list(run.attempts.all()) == [] for run in task.runs_page)
