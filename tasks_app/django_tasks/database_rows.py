"""ClusterBackend's tasks in this project's own database (no `url`): the
same checks, writes, reads and refusals as the REST API's, without HTTP.
Loaded only by a backend configured so: it needs tasks_app's models."""

from __future__ import annotations

from typing import Any

from django_tasks.exceptions import TaskResultDoesNotExist
from rest_framework.exceptions import ValidationError

from tasks_app import jobs, selectors, services
from tasks_app.api.errors import exception_handler
from tasks_app.api.job_serializers import job_spec
from tasks_app.api.serializers import task_detail
from tasks_app.django_tasks.errors import TaskRefused
from tasks_app.exceptions import TaskError, TaskNotFound


class DatabaseRows:
    """This project's database: a task checked as `POST /tasks` checks a
    JSON task (tasks_app.api.job_serializers), stored by the services
    (tasks_app.jobs: the scheduler is told after commit, as for any
    submission), read by the selectors and shown as `GET /tasks/<id>`
    shows it. A refusal is the status and body the API would answer."""

    def module(self, wasm: bytes) -> str:
        try:
            return services.store_module(wasm=wasm).pk
        except (TaskError, ValidationError) as exc:
            raise _api_refusal(exc) from exc

    def submit(self, body: dict[str, Any]) -> dict[str, Any]:
        try:
            task = jobs.create_job(job_spec(body))
        except (TaskError, ValidationError) as exc:
            raise _api_refusal(exc) from exc
        return self.get(task.pk)

    def get(self, task_id: str) -> dict[str, Any]:
        try:
            task = selectors.task_detail(task_id, runs_limit=1)
        except TaskNotFound as exc:
            raise TaskResultDoesNotExist(task_id) from exc
        return task_detail(task, runs_limit=1, runs_offset=0)


def _api_refusal(exc: Exception) -> TaskRefused:
    """A domain error as TaskRefused, with the status and body the API
    maps it to (tasks_app.api.errors, the one place that maps them)."""
    response = exception_handler(exc, {})
    if response is None:  # not an error the API maps: a bug, not a refusal
        raise exc
    body = response.data if isinstance(response.data, dict) else {}
    return TaskRefused(
        f"{response.status_code} {body.get('detail', exc)}",
        field=body.get("field"),
        problem=str(body.get("problem", exc)),
        status=response.status_code,
    )
