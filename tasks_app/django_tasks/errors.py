"""How a run ended, as a result's `errors` name it, and the backend's
refusal."""

from __future__ import annotations

from django_tasks.exceptions import InvalidTaskError


class RunError(Exception):
    """Base of the exception classes a result's `errors` name."""


class RunFailed(RunError):
    """The module trapped, exited non-zero, or was refused."""


class RunTimedOut(RunError):
    """The run was stopped at its time limit (`duration`)."""


class RunCancelled(RunError):
    """The task was cancelled before or while the run ran."""


class WorkerLost(RunError):
    """The worker went away during the attempt (the run is tried again)."""


class RunsOnTheCluster(RunError):
    """A wasm_task's function was called here: its module runs on the
    cluster's workers; enqueue it."""


class TaskRefused(InvalidTaskError):
    """The gateway (or, without a URL, the services) refused the task:
    `field` and `problem` say why, `status` is the HTTP status it answered
    (400, 404 for an unknown module, 409 for an id in use, 413, 429)."""

    def __init__(self, message: str, *, field: str | None, problem: str, status: int) -> None:
        super().__init__(message)
        self.field = field
        self.problem = problem
        self.status = status
