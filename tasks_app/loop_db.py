"""The event loop's own SQLite connection (the embedded default only).

Two writes sit on the path from a submission to its result: the task with
its runs, and the run's records. Each is a few statements. Through Django
they run on a thread (Django's connections refuse the event loop's thread):
a hand-off there and back, and Django's transaction and cursor machinery,
cost more than the statements. So on SQLite the event loop writes them
itself, on a connection of its own that never waits for the database's
write lock: when another connection holds it (a request storing a big
task, a long batch), `transaction()` raises WriteElsewhere at once and the
caller does the write Django's way, on a thread, where waiting is harmless.
A write here holds the lock for a fraction of a millisecond."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from django.db import DEFAULT_DB_ALIAS, connections

from tasks_app.exceptions import WriteElsewhere


class LoopDatabase:
    """An SQLite connection for one event loop's thread, opened on first use."""

    def __init__(self, path: str) -> None:
        self._path = path
        self._conn: sqlite3.Connection | None = None

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Cursor]:
        """A write transaction holding the lock from its start (BEGIN
        IMMEDIATE), committed when the block ends, rolled back if it raises;
        WriteElsewhere if another connection holds the lock."""
        conn = self._connection()
        try:
            conn.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as exc:  # busy: another writer has the lock
            raise WriteElsewhere(str(exc)) from None
        cursor = conn.cursor()
        try:
            yield cursor
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        finally:
            cursor.close()

    def query(self, statement: str, params: tuple[Any, ...]) -> list[tuple[Any, ...]]:
        """A read outside any transaction (it sees what is committed)."""
        return self._connection().execute(statement, params).fetchall()

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None:
            # Autocommit (the transactions are ours), no busy wait; the file's
            # WAL mode is set by Django's connections already.
            conn = sqlite3.connect(
                self._path, timeout=0, isolation_level=None, uri=self._path.startswith("file:")
            )
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute("PRAGMA foreign_keys=ON")
            self._conn = conn
        return self._conn


def loop_database() -> LoopDatabase | None:
    """A LoopDatabase on the default database, if that is SQLite."""
    db = connections[DEFAULT_DB_ALIAS]
    if db.vendor != "sqlite":
        return None
    return LoopDatabase(str(db.settings_dict["NAME"]))


def qmark(statement: str) -> str:
    """A statement written with `%s` placeholders (Django's), for sqlite3."""
    return statement.replace("%s", "?")
