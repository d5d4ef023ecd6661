"""The submission's writes (tasks_app/services.py): the task and its runs
inserted without the query builder, and a known module found without
reading its bytes back, store and read back as through the ORM."""

from __future__ import annotations

import pytest

from tasks_app import services
from tasks_app.models import Iteration, Task
from tests.api.forms import HASH_WASM


@pytest.mark.django_db
def test_many_runs_are_inserted_in_batches_with_their_keys() -> None:
    task, runs = services.create_task(
        task_id="many",
        description="",
        wasm=HASH_WASM,
        duration=0,
        start=0,
        delay=1,
        repeats=1000,
        input=0,
        difficulty=1,
    )
    stored = list(Iteration.objects.filter(task_id="many").order_by("index"))
    assert len(stored) == len(runs) == 1000
    assert [run.iteration_id for run in runs] == [it.pk for it in stored]
    assert [run.due_at for run in runs] == [it.due_at for it in stored]
    assert all(it.state == Iteration.State.PENDING for it in stored)
    assert task.pk == "many" and not task._state.adding


@pytest.mark.django_db
def test_the_stored_task_reads_back_as_it_was_made() -> None:
    task, _ = services.create_task(
        task_id="same",
        description="d\N{SNOWMAN}",
        wasm=HASH_WASM,
        duration=1.5,
        start=2,
        delay=0.25,
        repeats=3,
        input=-(2**63),
        difficulty=2**63 - 1,
        retries=4,
    )
    stored = Task.objects.get(pk="same")
    for field in Task._meta.concrete_fields:
        assert getattr(stored, field.attname) == getattr(task, field.attname), field.name


@pytest.mark.django_db
def test_a_known_module_is_not_read_back_but_loads_on_demand() -> None:
    first = services.store_module(wasm=HASH_WASM)
    again = services.store_module(wasm=HASH_WASM)
    assert again.pk == first.pk
    assert (again.size, again.kind) == (first.size, first.kind)
    assert "wasm" in again.get_deferred_fields()
    assert bytes(again.wasm) == HASH_WASM
