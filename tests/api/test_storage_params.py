"""No statement of the domain's takes more than 999 parameters, the most
SQLite builds before 3.32 accept: here both connections (Django's and the
event loop's own) are held to that limit, and tasks, journal batches and
re-runs bigger than it are written whole."""

from __future__ import annotations

import functools
import sqlite3
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from django.db import OperationalError, connection
from django.utils import timezone

from tasks_app import run_records, services
from tasks_app.journal import Record, RunEnded, RunSent
from tasks_app.loop_db import LoopDatabase, loop_database
from tasks_app.models import Attempt, Iteration, Task
from tests.api.forms import stored_task

pytestmark = pytest.mark.django_db(transaction=True)

LIMIT = 999
RUNS = 1_200  # more keys than one statement may take
PEER = "12D3KooWParamLimit"


def _limit(conn: sqlite3.Connection) -> int:
    """Hold `conn` to LIMIT parameters a statement; returns its limit before."""
    return conn.setlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER, LIMIT)


@pytest.fixture
def old_sqlite() -> Iterator[None]:
    """Django's connection (the one every test shares) as an old SQLite."""
    connection.ensure_connection()
    before = _limit(connection.connection)
    yield
    connection.connection.setlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER, before)


@pytest.fixture
def loop_db(old_sqlite: None) -> Iterator[LoopDatabase]:
    db = loop_database()
    assert db is not None  # the tests run on SQLite
    _limit(db._connection())  # the test reaches in: nothing else needs the raw connection
    yield db
    db.close()


Writer = Callable[[list[Record]], list[dict[str, Any]]]


@pytest.fixture(params=["on the journal's thread", "on the event loop"])
def record_runs(request: pytest.FixtureRequest, old_sqlite: None) -> Iterator[Writer]:
    if request.param == "on the journal's thread":
        yield run_records.record_runs
        return
    db = request.getfixturevalue("loop_db")
    yield functools.partial(run_records.record_runs_here, db)


def test_the_limit_is_in_force(old_sqlite: None) -> None:
    """The tests below prove something: a statement over the limit fails."""
    with pytest.raises(OperationalError, match="too many SQL variables"):
        list(Task.objects.filter(pk__in=[str(i) for i in range(LIMIT + 1)]))


def _task(task_id: str = "big") -> list[Iteration]:
    return stored_task(task_id, repeats=RUNS)


def test_a_task_of_more_runs_than_the_limit_is_stored(old_sqlite: None) -> None:
    runs = _task()
    assert [r.index for r in runs] == list(range(RUNS))


def test_a_batch_of_more_runs_than_the_limit_is_written(record_runs: Writer) -> None:
    """A batch's reads take its runs' and tasks' ids: 1,200 runs' attempts
    and states are read in chunks."""
    runs = _task()
    now = timezone.now()
    batch: list[Record] = []
    for run in runs:
        sent = RunSent(run.pk, run.task_id, run.index, 1, PEER, sent_at=now)
        batch.append(sent)
        batch.append(RunEnded(run.pk, run.task_id, run.index, 1, PEER, "succeeded", "succeeded"))
    events = record_runs(batch)
    assert len(events) == 2 * RUNS
    assert events[-1]["completions"] == RUNS
    assert Iteration.objects.filter(task_id="big", state="succeeded").count() == RUNS
    assert Attempt.objects.filter(outcome="succeeded").count() == RUNS
    assert Task.objects.get(pk="big").succeeded_count == RUNS
    assert record_runs(batch) == []  # replayed whole: every attempt is found settled


def test_a_rerun_of_more_failed_runs_than_the_limit_queues_them_all(old_sqlite: None) -> None:
    _task()
    Iteration.objects.filter(task_id="big").update(state="failed", error="trap")
    assert services.rerun_failed(task_id="big") == RUNS
    assert Iteration.objects.filter(task_id="big", state="pending", error="").count() == RUNS
