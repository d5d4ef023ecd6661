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
