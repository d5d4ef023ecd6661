"""Django's task framework (the `django-tasks` backport, 0.12) on the
cluster: a `Task` whose `enqueue(**task_fields)` submits one run of a
WebAssembly module, and a backend that reads its result back from our rows.

    TASKS = {"default": {"BACKEND": "tasks_app.django_tasks.ClusterBackend",
                         "OPTIONS": {"url": "http://127.0.0.1:8080", "token": None}}}

    puzzle = wasm_task("hash.wasm")
    result = puzzle.enqueue(input=0, difficulty=3)
    result.refresh()  # later: result.status, .return_value ("2832"), .worker_ids

With `url` the backend reaches a gateway over REST (tasks_app.client);
without it, it writes and reads the project's own database through the
services and selectors, and the scheduler hears of each submission as it
does of any other. Nothing here is registered anywhere: a project that does
not name the backend in TASKS loads none of it.

Our run states map to the backport's statuses: pending → READY (also a run
waiting to be tried again), running → RUNNING, succeeded → SUCCESSFUL,
failed, timed_out and cancelled → FAILED. A result's `errors` hold one
`TaskError` per attempt that did not succeed (its `traceback` is our error
text, its exception class says how it ended: RunFailed, RunTimedOut,
RunCancelled, WorkerLost), `worker_ids` the peer ID of each attempt's worker
(so `attempts` counts the attempts), `return_value` the run's result text
(bytes when its output is not UTF-8)."""

from tasks_app.django_tasks.backend import ClusterBackend
from tasks_app.django_tasks.errors import (
    RunCancelled,
    RunError,
    RunFailed,
    RunsOnTheCluster,
    RunTimedOut,
    TaskRefused,
    WorkerLost,
)
from tasks_app.django_tasks.task import WasmTask, wasm_task

__all__ = [
    "ClusterBackend",
    "RunCancelled",
    "RunError",
    "RunFailed",
    "RunTimedOut",
    "RunsOnTheCluster",
    "TaskRefused",
    "WasmTask",
    "WorkerLost",
    "wasm_task",
]
