"""A task's args, stdin and env as the scheduler reads them: once per task,
never with each of its runs, the same through Django and through the
event loop's own connection."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from tasks_app import selectors, services
from tasks_app.job_inputs import SEED_FORM, JobInputs, reader_here
from tasks_app.loop_db import loop_database
from tasks_app.models import Task
from tests.api.forms import stored_task

pytestmark = pytest.mark.django_db(transaction=True)

STDIN = b"\x00\xff" + b"s" * 10_000
GIVEN = JobInputs(args=("a", "", "é"), stdin=STDIN, env=(("B", "2"), ("A", "1")))


def _task_with_inputs(task_id: str, repeats: int = 1) -> None:
    stored_task(task_id, repeats=repeats)
    Task.objects.filter(pk=task_id).update(
        args=["a", "", "é"], stdin=STDIN, env={"B": "2", "A": "1"}
    )


def test_inputs_read_through_django_and_on_the_loop_agree() -> None:
    _task_with_inputs("given")
    stored_task("seed")
    through_django = selectors.task_inputs(["given", "seed", "gone"])
    db = loop_database()
    assert db is not None  # the tests run on SQLite
    try:
        on_the_loop = reader_here(db)(["given", "seed", "gone"])
    finally:
        db.close()
    assert through_django == on_the_loop == {"given": GIVEN, "seed": SEED_FORM}


def test_due_runs_read_a_tasks_inputs_once_and_never_with_its_runs() -> None:
    _task_with_inputs("many", repeats=50)
    with CaptureQueriesContext(connection) as queries:
        runs = selectors.due_runs()
    assert len(runs) == 50
    assert runs[0].inputs == GIVEN and all(run.inputs is None for run in runs[1:])
    stdin_column = connection.ops.quote_name(Task._meta.get_field("stdin").column)
    reading_stdin = [q["sql"] for q in queries.captured_queries if stdin_column in q["sql"]]
    assert len(reading_stdin) == 1 and "iteration" not in reading_stdin[0].lower()


def test_due_runs_leave_out_the_inputs_the_caller_holds() -> None:
    _task_with_inputs("held", repeats=3)
    runs = selectors.due_runs(inputs_known={"held"})
    assert [run.inputs for run in runs] == [None, None, None]


def test_a_new_tasks_runs_carry_its_inputs_to_the_scheduler() -> None:
    """Announced with their inputs, a new task's runs need no read back."""
    due = timezone.now()
    task = Task(id="t", module_id="ab" * 32, args=["a", "", "é"], stdin=STDIN)
    task.env = {"B": "2", "A": "1"}
    runs = services.new_runs(task, [11, 12], [due, due])
    assert [run.inputs for run in runs] == [GIVEN, GIVEN]
    seed = services.new_runs(Task(id="s", module_id="ab" * 32), [13], [due])
    assert seed[0].inputs is SEED_FORM
