"""The event loop's own SQLite connection (tasks_app.loop_db) for a
submission: a task whose module is stored already goes in there, whole;
anything it cannot do without waiting or without Django (a new module, a
database another connection is writing) it leaves, storing nothing."""

from __future__ import annotations

import asyncio
import re
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.db import DEFAULT_DB_ALIAS, connection, transaction
from django.db.utils import ConnectionHandler

from tasks_app import services
from tasks_app.exceptions import TaskAlreadyExists, WriteElsewhere
from tasks_app.loop_db import LoopDatabase, checkpoint_wal, loop_database
from tasks_app.models import Iteration, Module, Task
from tests.api.forms import HASH_WASM

# Its own connection sees only what is committed.
pytestmark = pytest.mark.django_db(transaction=True)

FIELDS = {
    "description": "",
    "duration": 5.0,
    "start": 1.0,
    "delay": 2.0,
    "repeats": 3,
    "input": 7,
    "difficulty": 3,
    "retries": 1,
}


@pytest.fixture
def loop_db() -> Iterator[LoopDatabase]:
    db = loop_database()
    assert db is not None  # the tests run on SQLite
    yield db
    db.close()


def _stored_module() -> None:
    services.create_task(task_id="first", wasm=HASH_WASM, **FIELDS)


def test_a_task_with_a_known_module_is_stored_whole(loop_db: LoopDatabase) -> None:
    _stored_module()
    task, runs = services.create_task_here(loop_db, task_id="here", wasm=HASH_WASM, **FIELDS)
    stored = Task.objects.get(pk="here")
    for field in Task._meta.concrete_fields:
        assert getattr(stored, field.attname) == getattr(task, field.attname), field.name
    rows = list(Iteration.objects.filter(task_id="here").order_by("index"))
    assert [r.pk for r in rows] == [run.iteration_id for run in runs]
    assert [r.due_at for r in rows] == [run.due_at for run in runs]
    assert {r.state for r in rows} == {"pending"}
    assert (runs[0].module_hash, runs[0].input, runs[0].retries) == (stored.module_id, 7, 1)


def test_a_new_module_is_left_to_django(loop_db: LoopDatabase) -> None:
    with pytest.raises(WriteElsewhere):
        services.create_task_here(loop_db, task_id="new", wasm=HASH_WASM, **FIELDS)
    assert not Task.objects.exists() and not Module.objects.exists()


def test_while_another_connection_writes_it_steps_aside(loop_db: LoopDatabase) -> None:
    _stored_module()
    with transaction.atomic():  # BEGIN IMMEDIATE: this thread holds the write lock
        Task.objects.filter(pk="first").update(description="held")
        with pytest.raises(WriteElsewhere):
            services.create_task_here(loop_db, task_id="busy", wasm=HASH_WASM, **FIELDS)
    assert not Task.objects.filter(pk="busy").exists()
    assert not Iteration.objects.filter(task_id="busy").exists()


def test_a_duplicate_id_is_refused_and_nothing_is_added(loop_db: LoopDatabase) -> None:
    _stored_module()
    with pytest.raises(TaskAlreadyExists):
        services.create_task_here(loop_db, task_id="first", wasm=HASH_WASM, **FIELDS)
    assert Iteration.objects.filter(task_id="first").count() == 3


def test_submitting_here_hands_the_runs_to_a_scheduler_on_this_loop(
    loop_db: LoopDatabase,
) -> None:
    from tasks_app import notify

    _stored_module()
    handed: list[list[int]] = []

    async def main() -> None:
        notify.serve_locally(
            asyncio.get_running_loop(), lambda runs: handed.append([r.index for r in runs])
        )
        try:
            await services.submit_task_here(loop_db, task_id="handed", wasm=HASH_WASM, **FIELDS)
        finally:
            notify.stop_serving_locally()

    asyncio.run(main())
    assert handed == [[0, 1, 2]]  # at once, in the call: no hop


# What Django's SQLite backend sets on every connection, besides init_command.
DJANGO_PRAGMAS = ["foreign_keys", "legacy_alter_table"]


def _pragmas(conn: Any, names: list[str]) -> dict[str, Any]:
    return {name: conn.execute(f"PRAGMA {name}").fetchone()[0] for name in names}


def _init_pragmas() -> list[str]:
    """The pragmas the project's init_command sets (wwproject/settings.py)."""
    init = connection.settings_dict["OPTIONS"].get("init_command", "")
    return re.findall(r"PRAGMA\s+(\w+)", init, re.IGNORECASE)


def test_the_loop_connection_is_set_as_djangos_but_never_waits(loop_db: LoopDatabase) -> None:
    names = DJANGO_PRAGMAS + _init_pragmas()
    assert {"journal_mode", "synchronous", "busy_timeout", "foreign_keys"} <= set(names)
    connection.ensure_connection()
    django_side = _pragmas(connection.connection, names)
    loop_side = _pragmas(loop_db._connection(), names)  # the test reaches in
    assert django_side.pop("busy_timeout") == 30_000
    assert loop_side.pop("busy_timeout") == 0  # it steps aside at once instead
    assert loop_side == django_side


def test_a_setting_changed_in_djangos_options_reaches_the_loop_connection(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The loop's connection has no list of its own to forget: a pragma
    added to init_command (or a value changed there) is on it too."""
    options = dict(connection.settings_dict["OPTIONS"])
    options["init_command"] += "PRAGMA cache_size=-1234;PRAGMA synchronous=FULL;"
    monkeypatch.setitem(connection.settings_dict, "OPTIONS", options)
    db = loop_database()
    assert db is not None
    try:
        pragmas = _pragmas(db._connection(), ["cache_size", "synchronous"])
    finally:
        db.close()
    assert pragmas == {"cache_size": -1234, "synchronous": 2}  # 2: FULL


def test_the_loop_connection_never_checkpoints_the_wal_djangos_do(loop_db: LoopDatabase) -> None:
    """A checkpoint is run by the commit that takes the WAL past its limit, on
    that connection: never on the event loop's."""
    connection.ensure_connection()
    assert _pragmas(loop_db._connection(), ["wal_autocheckpoint"]) == {"wal_autocheckpoint": 0}
    django_side = _pragmas(connection.connection, ["wal_autocheckpoint"])
    assert django_side["wal_autocheckpoint"] > 0


def test_checkpoint_wal_copies_back_what_a_connection_that_never_checkpoints_wrote(
    tmp_path: Path,
) -> None:
    """On a database in WAL mode (the gateway's file; the tests' own is in
    memory), commits of a connection set as the loop's is (autocheckpoint
    0) leave their frames in the WAL; checkpoint_wal, on a Django
    connection of the same settings, copies every one back."""
    path = tmp_path / "db.sqlite3"
    handler = ConnectionHandler({DEFAULT_DB_ALIAS: {**connection.settings_dict, "NAME": str(path)}})
    django_db = handler[DEFAULT_DB_ALIAS]
    try:
        django_db.ensure_connection()  # init_command: WAL mode
        loop_side = sqlite3.connect(path, isolation_level=None)
        loop_side.execute("PRAGMA wal_autocheckpoint = 0")
        loop_side.execute("CREATE TABLE t (b BLOB)")
        for _ in range(50):
            loop_side.execute("INSERT INTO t VALUES (?)", (b"\0" * 4096,))
        result = checkpoint_wal(django_db)
        assert result is not None
        busy, frames, done = result
        assert busy == 0 and frames > 50 and done == frames
        loop_side.close()
    finally:
        handler.close_all()
