"""The hand-written statements (tasks_app/storage.py) stay true to the
models: every INSERT writes every concrete field of its model, tables and
columns are named only through `_meta`, states only through the enums."""

from __future__ import annotations

import re

import pytest
from django.db import models

from tasks_app import storage
from tasks_app.models import Attempt, Iteration, Module, Task, WorkerNode
from tasks_app.storage import DEFAULT, INSERTS, Insert

MODELS = (Task, Iteration, Attempt, Module, WorkerNode)


def _unwritten(spec: Insert) -> set[str]:
    """The concrete fields of `spec`'s model its INSERT leaves out, but the
    database's own auto id."""
    fields = {
        f.name
        for f in spec.model._meta.concrete_fields
        if not isinstance(f, models.AutoField | models.BigAutoField)
    }
    return fields - set(spec.fields())


@pytest.mark.parametrize("spec", INSERTS, ids=lambda spec: spec.model.__name__)
def test_each_insert_writes_every_concrete_field_given_per_row_or_as_a_listed_constant(
    spec: Insert,
) -> None:
    """A field added to Task, Iteration or Attempt fails here until its
    INSERT gives it per row or lists it as a constant on purpose (Django
    sets no database defaults: a column left out would be NULL)."""
    assert _unwritten(spec) == set(), (
        f"{spec.model.__name__}: add these fields to tasks_app.storage's INSERT"
    )
    written = spec.fields()
    assert len(written) == len(set(written)), "a field written twice"
    assert not set(written) - {f.name for f in spec.model._meta.concrete_fields}


def test_a_field_the_insert_leaves_out_is_reported() -> None:
    """The check above would catch a new field: here a field dropped from
    the run INSERT's constants stands for one the model gained."""
    run = storage.RUN_INSERT
    without = Insert(run.model, run.given, {k: v for k, v in run.constants.items() if k != "error"})
    assert _unwritten(without) == {"error"}


def test_constants_are_the_models_defaults_or_their_states() -> None:
    assert storage.TASK_INSERT.constant("succeeded_count") == 0
    assert storage.TASK_INSERT.constant("cancelled_at") is None
    assert storage.RUN_INSERT.constants["state"] is Iteration.State.PENDING
    assert storage.RUN_INSERT.constant("result") == Iteration._meta.get_field("result").default
    assert all(
        value is DEFAULT or isinstance(value, Iteration.State | Attempt.Outcome)
        for spec in INSERTS
        for value in spec.constants.values()
    )


_SQL_WORDS = {
    "TRUE",
    "FALSE",
    "SELECT",
    "FROM",
    "WHERE",
    "IN",
    "AND",
    "ORDER",
    "BY",
    "INSERT",
    "INTO",
    "VALUES",
    "UPDATE",
    "SET",
    "NULL",
}


def test_statements_name_tables_and_columns_only_through_the_models_meta() -> None:
    """Rendered with a quoting that marks names, every statement's
    identifiers are marked (so came from `_meta`), every marked name is a
    table or column of the models, and every quoted string is a state."""
    sql = storage.Statements(lambda name: f"<{name}>", "%s")
    known = {m._meta.db_table for m in MODELS} | {
        f.column for m in MODELS for f in m._meta.concrete_fields
    }
    states = set(Iteration.State.values) | set(Attempt.Outcome.values) | {""}
    statements = {k: v for k, v in vars(sql).items() if isinstance(v, str) and k != "placeholder"}
    assert len(statements) >= 15
    for name, text in statements.items():
        names = re.findall(r"<(\w+)>", text)
        assert set(names) <= known, name
        literals = re.findall(r"'([^']*)'", text)
        assert set(literals) <= states, name
        bare = re.sub(r"<\w+>|'[^']*'|%s|\{\}|\b\d+\b", " ", text)
        assert set(re.findall(r"[A-Za-z_]+", bare)) <= _SQL_WORDS, (name, text)


def test_chunks_cover_the_keys_in_order_within_the_limit() -> None:
    keys = list(range(2500))
    parts = list(storage.chunks(keys))
    assert [len(p) for p in parts] == [999, 999, 502]
    assert [k for p in parts for k in p] == keys
    assert list(storage.chunks([])) == []


@pytest.mark.parametrize("value", ["100%", b"x", 1.5j])
def test_only_plain_constants_are_written_into_a_statement(value: object) -> None:
    with pytest.raises(TypeError):
        storage._literal(value)


def test_a_quote_in_a_constant_is_doubled() -> None:
    assert storage._literal("it's") == "'it''s'"
    assert storage._literal(None) == "NULL"
    assert storage._literal(0) == "0"
    assert (storage._literal(False), storage._literal(True)) == ("FALSE", "TRUE")
