"""The gateway's SQLite database, read-only, for timing: every SQL statement
the bench runs is here.

Why read the database at all: "result stored" is the moment a run's row is
committed, and a poll of the file every 5 ms sees that moment to within
5 ms without asking the gateway (a REST poll would load the process being
measured). Table and column names are the models' (`tasks_app_iteration`
is a run, `tasks_app_attempt` one try of it on a worker)."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

from bench.clients import FINAL


class GatewayDB:
    def __init__(self, path: Path) -> None:
        self._path = path
        self._conn: sqlite3.Connection | None = None

    @property
    def conn(self) -> sqlite3.Connection:
        # Opened on first use: the file exists once the gateway has migrated.
        if self._conn is None:
            self._conn = sqlite3.connect(
                f"file:{self._path}?mode=ro",
                uri=True,
                timeout=30,
                isolation_level=None,
                check_same_thread=False,
            )
        return self._conn

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def connected_workers(self) -> int:
        return int(
            self.conn.execute(
                "SELECT count(*) FROM cluster_app_workernode WHERE connected"
            ).fetchone()[0]
        )

    def connected_peers(self) -> list[str]:
        rows = self.conn.execute(
            "SELECT peer_id FROM cluster_app_workernode WHERE connected"
        ).fetchall()
        return [r[0] for r in rows]

    def max_iteration_id(self) -> int:
        return int(
            self.conn.execute("SELECT coalesce(max(id), 0) FROM tasks_app_iteration").fetchone()[0]
        )

    def wait_final(
        self, after_id: int, count: int, timeout: float, interval: float = 0.005
    ) -> tuple[float | None, dict[str, int]]:
        """Poll until `count` runs with id > after_id are final. Returns
        (wall time of the poll that saw it, or None on timeout; states)."""
        deadline = time.monotonic() + timeout
        placeholders = ",".join("?" * len(FINAL))
        q = f"SELECT count(*) FROM tasks_app_iteration WHERE id > ? AND state IN ({placeholders})"
        done_at = None
        while time.monotonic() < deadline:
            n = self.conn.execute(q, (after_id, *FINAL)).fetchone()[0]
            if n >= count:
                done_at = time.time()
                break
            time.sleep(interval)
        states = dict(
            self.conn.execute(
                "SELECT state, count(*) FROM tasks_app_iteration WHERE id > ? GROUP BY state",
                (after_id,),
            ).fetchall()
        )
        return done_at, states

    def latest_running_attempt(self, after_id: int, peer_id: str) -> tuple[int, str] | None:
        """(attempt id, sent_at) of the newest attempt running on the peer,
        among runs with id > after_id."""
        row = self.conn.execute(
            "SELECT a.id, a.sent_at FROM tasks_app_attempt a JOIN tasks_app_iteration i "
            "ON a.iteration_id = i.id WHERE i.id > ? AND a.outcome = 'running' "
            "AND a.worker_peer_id = ? ORDER BY a.id DESC LIMIT 1",
            (after_id, peer_id),
        ).fetchone()
        return (int(row[0]), row[1]) if row else None

    def attempt_end(self, attempt_id: int) -> tuple[int, str | None, str]:
        """(run id, finished_at, outcome) of one attempt."""
        row = self.conn.execute(
            "SELECT iteration_id, finished_at, outcome FROM tasks_app_attempt WHERE id = ?",
            (attempt_id,),
        ).fetchone()
        return int(row[0]), row[1], row[2]

    def next_attempt(self, run_id: int, after_attempt: int) -> tuple[str, str | None, str] | None:
        """(sent_at, started_at, outcome) of the run's first attempt after one."""
        row = self.conn.execute(
            "SELECT sent_at, started_at, outcome FROM tasks_app_attempt WHERE iteration_id = ? "
            "AND id > ? ORDER BY id LIMIT 1",
            (run_id, after_attempt),
        ).fetchone()
        return (row[0], row[1], row[2]) if row else None

    def attempts_per_worker(self, after_id: int) -> dict[str, int]:
        """Attempts of runs with id > after_id, per worker peer ID."""
        return dict(
            self.conn.execute(
                "SELECT a.worker_peer_id, count(*) FROM tasks_app_attempt a JOIN "
                "tasks_app_iteration i ON a.iteration_id = i.id WHERE i.id > ? "
                "GROUP BY a.worker_peer_id",
                (after_id,),
            ).fetchall()
        )
