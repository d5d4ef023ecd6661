"""Writes for tasks submitted as JSON (`POST /tasks`, `POST /tasks/batch`):
each task's fields held to the rules, its module found (by hash) or checked
and stored, and every task with all its runs stored in one transaction, or
nothing; then the scheduler is told, after commit, as for a form.

A batch of 10,000 one-run tasks by module hash is a few hundred statements
(tasks_app.storage.insert_tasks): one look for the modules, one for ids
taken, the inserts."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, IntegrityError, connections, transaction
from django.utils import timezone

from tasks_app import notify, schedule, storage
from tasks_app.exceptions import (
    InvalidBatchItem,
    InvalidField,
    ModuleTooLarge,
    TaskAlreadyExists,
)
from tasks_app.models import Module, Task
from tasks_app.modules import module_hash
from tasks_app.selectors import DueRun
from tasks_app.services import new_runs, store_module

log = logging.getLogger("ww.tasks")


@dataclass(frozen=True)
class JobSpec:
    """One task as submitted in JSON: the module by hash (`module`) or its
    bytes (`wasm`), the seed's fields, and what a run is given."""

    id: str | None
    module: str | None
    wasm: bytes | None
    description: str = ""
    duration: float = 0
    start: float = 0
    delay: float = 0
    repeats: int = 1
    input: int = 0
    difficulty: int = 0
    retries: int = 0
    args: list[str] | None = None
    stdin: bytes = b""
    env: dict[str, str] = field(default_factory=dict)
    priority: int = 0
    queue: str = "default"
    constraints: dict[str, str] = field(default_factory=dict)
    replicas: int = 1
    fuel: int | None = None


# Accepted and stored now, given their effect by later work (replicas,
# fuel): until then anything but the default is refused, never silently
# ignored. (priority, queue and constraints have theirs: tasks_app.run_queue.)
_NOT_YET = {
    "replicas": 1,
    "fuel": None,
}


def check(spec: JobSpec) -> None:
    """InvalidField naming the first of `spec`'s fields over a bound or
    not supported yet."""
    conf = settings.WW_TASKS
    for name, default in _NOT_YET.items():
        if getattr(spec, name) != default:
            raise InvalidField(
                name, f"not supported yet: only {default!r} is accepted for now (the default)"
            )
    if spec.args is not None:
        if len(spec.args) > conf.task_max_args:
            raise InvalidField("args", f"at most {conf.task_max_args} (WW_TASK_MAX_ARGS)")
        if sum(len(a.encode()) for a in spec.args) > conf.task_args_max_bytes:
            limit = conf.task_args_max_bytes
            raise InvalidField("args", f"at most {limit} bytes together (WW_TASK_ARGS_MAX_BYTES)")
    if len(spec.env) > conf.task_max_env:
        raise InvalidField("env", f"at most {conf.task_max_env} variables (WW_TASK_MAX_ENV)")
    env_bytes = sum(len(k.encode()) + len(v.encode()) for k, v in spec.env.items())
    if env_bytes > conf.task_env_max_bytes:
        raise InvalidField(
            "env", f"at most {conf.task_env_max_bytes} bytes together (WW_TASK_ENV_MAX_BYTES)"
        )
    if len(spec.stdin) > conf.task_stdin_max_bytes:
        raise InvalidField(
            "stdin", f"at most {conf.task_stdin_max_bytes} bytes (WW_TASK_STDIN_MAX_BYTES)"
        )
    if spec.wasm is not None and len(spec.wasm) > conf.module_max_bytes:
        raise ModuleTooLarge(conf.module_max_bytes)


def new_task_id() -> str:
    """An id for a task submitted without one: unique (122 random bits;
    the primary key refuses a repeat), within TASK_ID_PATTERN."""
    return uuid.uuid4().hex


@dataclass(frozen=True)
class Stored:
    tasks: list[Task]
    runs: list[DueRun]


def create_jobs(specs: Sequence[JobSpec], *, received_at: datetime | None = None) -> Stored:
    """Store every task of `specs` with its runs, or nothing: InvalidBatchItem
    names the first bad one (its index and field). Inside the caller's
    transaction if there is one; the scheduler is told once it commits."""
    received_at = received_at or timezone.now()
    for index, spec in enumerate(specs):
        try:
            check(spec)
        except InvalidField as exc:
            raise InvalidBatchItem(index, exc.field, exc.problem) from None
    ids = [spec.id or new_task_id() for spec in specs]
    _refuse_repeated(ids)
    with transaction.atomic():
        modules = _modules(specs)
        # A taken id is found by the primary key on insert (no look first:
        # one query less per submission), then named by a look.
        tasks = [
            _task(spec, task_id, module, received_at)
            for spec, task_id, module in zip(specs, ids, modules, strict=True)
        ]
        dues = [
            schedule.due_times(received_at, start=t.start, delay=t.delay, repeats=t.repeats)
            for t in tasks
        ]
        db = connections[DEFAULT_DB_ALIAS]
        try:
            with transaction.atomic(), db.cursor() as cursor:
                sql = storage.statements(db, driver_cursor=False)
                run_ids = storage.insert_tasks(cursor, db, sql, tasks, dues)
        except IntegrityError:  # an id taken, before or meanwhile by another request
            _refuse_taken(ids)
            raise InvalidBatchItem(0, "id", "an id was taken meanwhile", conflict=True) from None
        runs: list[DueRun] = []
        if run_ids is not None:
            for task, ids_of_task, due in zip(tasks, run_ids, dues, strict=True):
                runs += new_runs(task, ids_of_task, due)
        transaction.on_commit(lambda: _tell_scheduler(tasks, runs if run_ids is not None else None))
    log.info("%d tasks stored (JSON)", len(tasks))
    return Stored(tasks=tasks, runs=runs)


def create_job(spec: JobSpec, *, received_at: datetime | None = None) -> Task:
    """One JSON task (`create_jobs` of one): InvalidField or
    TaskAlreadyExists, as a form's are."""
    try:
        return create_jobs([spec], received_at=received_at).tasks[0]
    except InvalidBatchItem as exc:
        if exc.conflict:
            raise TaskAlreadyExists(spec.id or "") from None
        raise InvalidField(exc.field, exc.problem) from None


def _refuse_repeated(ids: list[str]) -> None:
    first: dict[str, int] = {}
    for index, task_id in enumerate(ids):
        if task_id in first:
            raise InvalidBatchItem(index, "id", f"the same id as tasks[{first[task_id]}]")
        first[task_id] = index


def _refuse_taken(ids: list[str]) -> None:
    taken: set[str] = set()
    for chunk in storage.chunks(ids, storage.ORM_IN_KEYS):
        taken.update(Task.objects.filter(pk__in=chunk).values_list("pk", flat=True))
    for index, task_id in enumerate(ids):
        if task_id in taken:
            raise InvalidBatchItem(
                index, "id", f"a task with id {task_id!r} already exists", conflict=True
            )


def _modules(specs: Sequence[JobSpec]) -> list[str]:
    """Each spec's module hash, by hash or by bytes: stored modules found in
    one look, new bytes checked and stored once per content."""
    wanted = {spec.module for spec in specs if spec.module is not None}
    known: set[str] = set()
    for chunk in storage.chunks(sorted(wanted), storage.ORM_IN_KEYS):
        known.update(Module.objects.filter(pk__in=chunk).values_list("pk", flat=True))
    stored: dict[str, str] = {}
    hashes: list[str] = []
    for index, spec in enumerate(specs):
        if spec.module is not None:
            if spec.module not in known:
                raise InvalidBatchItem(
                    index, "module", "no stored module with this sha256 (POST /modules first)"
                )
            hashes.append(spec.module)
            continue
        assert spec.wasm is not None  # the serializer gives one of the two
        digest = module_hash(spec.wasm)
        if digest not in stored:
            try:
                stored[digest] = store_module(wasm=spec.wasm).pk
            except InvalidField as exc:
                raise InvalidBatchItem(index, "wasm_base64", exc.problem) from None
            except ModuleTooLarge as exc:
                raise InvalidBatchItem(index, "wasm_base64", str(exc)) from None
        hashes.append(stored[digest])
    return hashes


def _task(spec: JobSpec, task_id: str, module: str, received_at: datetime) -> Task:
    return Task(
        id=task_id,
        description=spec.description,
        module_id=module,
        duration=spec.duration,
        start=spec.start,
        delay=spec.delay,
        repeats=spec.repeats,
        input=spec.input,
        difficulty=spec.difficulty,
        retries=spec.retries,
        args=spec.args,
        stdin=spec.stdin,
        env=spec.env,
        priority=spec.priority,
        queue=spec.queue,
        constraints=spec.constraints,
        replicas=spec.replicas,
        fuel=spec.fuel,
        received_at=received_at,
    )


def _tell_scheduler(tasks: list[Task], runs: list[DueRun] | None) -> None:
    """New runs to the scheduler, as a form's are: carried in messages of
    up to RUNS_IN_MESSAGE runs, or (a task of more runs, or no keys
    returned) by task id for the scheduler to read back."""
    if runs is None:
        for task in tasks:
            notify.task_submitted(task.pk)
        return
    big = {task.pk for task in tasks if task.run_count > notify.RUNS_IN_MESSAGE}
    for task_id in sorted(big):
        notify.task_submitted(task_id)
    carried = [run for run in runs if run.task_id not in big]
    for chunk in storage.chunks(carried, notify.RUNS_IN_MESSAGE):
        notify.task_submitted(chunk[0].task_id, chunk)
