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
A write here holds the lock for a fraction of a millisecond.

The connection is Django's own kind: opened by Django's SQLite backend
from the same settings (its pragmas, the project's init_command, the
transaction mode), so the two cannot drift apart. It differs on purpose
in three things only: it never waits for the lock (busy timeout 0), its
transactions take the lock at BEGIN whatever the settings say (a
transaction that took it later could fail half-way instead of at once),
and it never checkpoints the WAL (the commit that takes the WAL past its
limit runs the checkpoint, copying pages back and syncing: tens of
milliseconds, which on the loop would hold up every dispatch). Django's
connections on their threads checkpoint as usual, and the gateway's sweep
runs `checkpoint_wal()` on its thread every few seconds, so the WAL stays
small even when the loop does every write."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any

from django.db import DEFAULT_DB_ALIAS, connections
from django.db.backends.base.base import BaseDatabaseWrapper

from tasks_app.exceptions import WriteElsewhere


class LoopDatabase:
    """An SQLite connection for one event loop's thread, opened on first use."""

    def __init__(self, alias: str = DEFAULT_DB_ALIAS) -> None:
        self._alias = alias
        self._conn: sqlite3.Connection | None = None
        self._begin = "BEGIN IMMEDIATE"

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Cursor]:
        """A write transaction holding the lock from its start (BEGIN
        IMMEDIATE), committed when the block ends, rolled back if it raises;
        WriteElsewhere if another connection holds the lock."""
        conn = self._connection()
        try:
            conn.execute(self._begin)
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
            # Django refuses to open a connection on a thread running an
            # event loop (its guard is for its own per-thread connections;
            # this one is ours): it is opened on a thread of its own, once.
            with ThreadPoolExecutor(1, thread_name_prefix="loop-db-open") as pool:
                self._conn = pool.submit(self._open).result()
        return self._conn

    def _open(self) -> sqlite3.Connection:
        """A connection as Django's SQLite backend opens one for the same
        settings, then made never to wait, in autocommit (the transactions
        are ours). WriteElsewhere if it cannot be opened without waiting."""
        django_db = connections.create_connection(self._alias)  # Django's settings, not its state
        params = django_db.get_connection_params()
        params["timeout"] = 0
        try:
            conn = django_db.get_new_connection(params)
        except sqlite3.OperationalError as exc:  # busy: e.g. init_command's journal_mode
            raise WriteElsewhere(str(exc)) from None
        # After init_command, which sets Django's connections' wait.
        conn.execute("PRAGMA busy_timeout = 0")
        # Never a checkpoint on the loop (see above).
        conn.execute("PRAGMA wal_autocheckpoint = 0")
        conn.isolation_level = None
        # Set by get_connection_params from OPTIONS (None: Django's default).
        mode = getattr(django_db, "transaction_mode", None)
        if mode in ("IMMEDIATE", "EXCLUSIVE"):
            self._begin = f"BEGIN {mode}"
        return conn


def checkpoint_wal(db: BaseDatabaseWrapper | None = None) -> tuple[int, int, int] | None:
    """A passive checkpoint of the WAL on Django's connection (the calling
    thread's, or `db`), on SQLite: (busy, frames in the WAL, frames
    checkpointed); None on another database. It never waits for a writer."""
    db = db or connections[DEFAULT_DB_ALIAS]
    if db.vendor != "sqlite":
        return None
    with db.cursor() as cursor:
        cursor.execute("PRAGMA wal_checkpoint(PASSIVE)")
        busy, frames, done = cursor.fetchone()
    return int(busy), int(frames), int(done)


def loop_database() -> LoopDatabase | None:
    """A LoopDatabase on the default database, if that is SQLite."""
    db = connections[DEFAULT_DB_ALIAS]
    if db.vendor != "sqlite":
        return None
    return LoopDatabase(DEFAULT_DB_ALIAS)
