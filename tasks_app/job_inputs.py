"""What a task gives each of its runs' modules beyond the seed's two
integers: a WASI command's argv after argv[0], its stdin and its
environment (SPEC, "Second contract"), and the scheduler's memory of them.

They are a task's, the same for every one of its runs, so the scheduler
holds them once per task (`TaskInputs`), not once per queued run: the due
runs are read without them (a task's stdin may be megabytes, and a task may
have 100,000 runs), and a task's inputs are read once, when its first run
is queued or sent. A task in the seed's form gives nothing (`SEED_FORM`).

A run announced by a submission comes without them: they are read when it
is sent, on the event loop's own SQLite connection where there is one
(tasks_app.loop_db: a point read of microseconds, where a hand-off to
Django's thread waits behind the requests it serves), else on Django's
thread.
"""

from __future__ import annotations

import json
import logging
from collections import OrderedDict
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from asgiref.sync import sync_to_async
from django.db import DEFAULT_DB_ALIAS, connections

from tasks_app import storage
from tasks_app.loop_db import LoopDatabase

log = logging.getLogger("ww.scheduler")


@dataclass(frozen=True)
class JobInputs:
    args: tuple[str, ...] | None = None  # None: the seed's [input, difficulty]
    stdin: bytes = b""
    env: tuple[tuple[str, str], ...] = ()  # (name, value), in the task's order

    @property
    def size(self) -> int:
        """About how many bytes they take (what the cache counts)."""
        return (
            len(self.stdin)
            + sum(len(arg) for arg in self.args or ())
            + sum(len(name) + len(value) for name, value in self.env)
        )


SEED_FORM = JobInputs()


def of_row(args: Any, stdin: bytes | memoryview | None, env: Any) -> JobInputs:
    """A task row's `args`, `stdin` and `env` (as Django reads them) as a
    run is given them."""
    pairs = tuple((str(k), str(v)) for k, v in env.items()) if isinstance(env, Mapping) else ()
    inputs = JobInputs(
        args=None if args is None else tuple(str(arg) for arg in args),
        stdin=bytes(stdin or b""),
        env=pairs,
    )
    return SEED_FORM if inputs == SEED_FORM else inputs


Read = Callable[[list[str]], dict[str, JobInputs]]


def reader_here(db: LoopDatabase) -> Read:
    """A `Read` on the event loop's own connection (SQLite)."""

    def read(task_ids: list[str]) -> dict[str, JobInputs]:
        rows = storage.task_inputs_here(db.query, connections[DEFAULT_DB_ALIAS], task_ids)
        return {
            task_id: of_row(_json(args), stdin, _json(env)) for task_id, args, stdin, env in rows
        }

    return read


def _json(text: str | None) -> Any:
    return None if text is None else json.loads(text)


class TaskInputs:
    """The inputs of the tasks whose runs the scheduler holds, least
    recently used forgotten first past `max_tasks` tasks or `max_bytes`
    (a forgotten task's inputs are read again when one of its runs is
    sent). Seed-form tasks cost an entry, no bytes."""

    def __init__(
        self,
        read: Read,
        *,
        read_here: Read | None = None,
        max_tasks: int = 4096,
        max_bytes: int = 64 << 20,
    ) -> None:
        self._read = read  # task ids -> their inputs (a task gone is left out), on a thread
        self._read_here = read_here  # the same on the event loop, where it is cheap
        self._known: OrderedDict[str, JobInputs] = OrderedDict()
        self._bytes = 0
        self._max_tasks = max(max_tasks, 1)
        self._max_bytes = max_bytes
        self.reads = 0  # tasks read from the database (tests count them)

    def __contains__(self, task_id: str) -> bool:
        return task_id in self._known

    def known(self) -> frozenset[str]:
        """The task ids held now (a copy: for a read on another thread)."""
        return frozenset(self._known)

    def get(self, task_id: str) -> JobInputs | None:
        inputs = self._known.get(task_id)
        if inputs is not None:
            self._known.move_to_end(task_id)
        return inputs

    def learn(self, task_id: str, inputs: JobInputs) -> None:
        old = self._known.pop(task_id, None)
        if old is not None:
            self._bytes -= old.size
        self._known[task_id] = inputs
        self._bytes += inputs.size
        while len(self._known) > 1 and (
            len(self._known) > self._max_tasks or self._bytes > self._max_bytes
        ):
            _, dropped = self._known.popitem(last=False)
            self._bytes -= dropped.size

    def learn_all(self, inputs: Mapping[str, JobInputs]) -> None:
        for task_id, each in inputs.items():
            self.learn(task_id, each)

    def forget(self, task_id: str) -> None:
        old = self._known.pop(task_id, None)
        if old is not None:
            self._bytes -= old.size

    def cached(self, task_ids: Iterable[str]) -> dict[str, JobInputs] | None:
        """Each task's inputs, or None when one of them is not held."""
        found: dict[str, JobInputs] = {}
        for task_id in task_ids:
            inputs = found.get(task_id) or self.get(task_id)
            if inputs is None:
                return None
            found[task_id] = inputs
        return found

    async def of(self, task_ids: Collection[str]) -> dict[str, JobInputs]:
        """Each task's inputs, those not held read from the database (on a
        thread) and learnt; a task gone is left out. Raises what the read
        raises."""
        missing = sorted(task_id for task_id in task_ids if task_id not in self._known)
        read: dict[str, JobInputs] | None = {} if not missing else None
        if read is None and self._read_here is not None:
            try:
                read = self._read_here(missing)
            except Exception as exc:  # noqa: BLE001 - a busy database: Django's way, then
                log.info("inputs of %d tasks not read on the loop (%s)", len(missing), exc)
        if read is None:
            read = await sync_to_async(self._read)(missing)
        self.reads += len(missing)
        self.learn_all(read)
        found = {task_id: read.get(task_id) or self._known.get(task_id) for task_id in task_ids}
        return {task_id: inputs for task_id, inputs in found.items() if inputs is not None}
