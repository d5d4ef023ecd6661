"""Domain errors. The API maps each to an HTTP status in one place
(`tasks_app.api.errors`)."""

from __future__ import annotations


class TaskError(Exception):
    """Base of the errors a caller can get from the task services."""


class InvalidField(TaskError):
    """A submitted field is missing or wrong."""

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(f"{field}: {problem}")
        self.field = field
        self.problem = problem


class TaskAlreadyExists(TaskError):
    def __init__(self, task_id: str) -> None:
        super().__init__(f"a task with id {task_id!r} already exists")
        self.task_id = task_id


class ModuleTooLarge(TaskError):
    def __init__(self, limit: int) -> None:
        super().__init__(f"the module is larger than the limit of {limit} bytes")
        self.limit = limit


class TaskNotFound(TaskError):
    def __init__(self, task_id: str) -> None:
        super().__init__(f"no task with id {task_id!r}")
        self.task_id = task_id


class WriteElsewhere(Exception):
    """A write on the event loop's own connection cannot be made now (the
    database is busy, or the write needs Django): make it on a thread."""


class ModuleNotFound(TaskError):
    def __init__(self, sha256: str) -> None:
        super().__init__(f"no stored module with sha256 {sha256!r}")
        self.sha256 = sha256


class RunNotFound(TaskError):
    def __init__(self, task_id: str, index: int) -> None:
        super().__init__(f"task {task_id!r} has no run {index}")
        self.task_id = task_id
        self.index = index


class BodyTooLarge(TaskError):
    """A request body over its limit (413)."""

    def __init__(self, limit: int, what: str = "body") -> None:
        super().__init__(f"the {what} is larger than the limit of {limit} bytes")
        self.limit = limit


class InvalidBatchItem(TaskError):
    """One task of a batch is wrong: which one, which field, why."""

    def __init__(self, index: int, field: str, problem: str, *, conflict: bool = False) -> None:
        super().__init__(f"tasks[{index}].{field}: {problem}")
        self.index = index
        self.field = field
        self.problem = problem
        self.conflict = conflict  # a duplicate id: 409, not 400


class IdempotencyConflict(TaskError):
    """An Idempotency-Key used before with another request body (409)."""

    def __init__(self, key: str) -> None:
        super().__init__(f"this Idempotency-Key was used before with another request body: {key!r}")
        self.key = key


class Overloaded(TaskError):
    """The gateway holds as much of something as it may (503, Retry-After)."""

    def __init__(self, field: str, problem: str, *, retry_after: int = 1) -> None:
        super().__init__(f"{field}: {problem}")
        self.field = field
        self.problem = problem
        self.retry_after = retry_after
