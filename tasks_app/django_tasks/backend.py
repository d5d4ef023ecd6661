"""`ClusterBackend`: the backport's backend API over our tasks, on a
gateway (REST) or in this project's database."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol

from django.utils import timezone
from django_tasks import TaskResult
from django_tasks.backends.base import BaseTaskBackend
from django_tasks.base import DEFAULT_TASK_QUEUE_NAME, Task
from django_tasks.exceptions import InvalidTaskError
from django_tasks.signals import task_enqueued

from tasks_app.client.calls import DEFAULT_TIMEOUT
from tasks_app.django_tasks.results import task_body, task_kwargs, task_result
from tasks_app.django_tasks.task import ModuleRef, WasmTask, is_sha256, run_module


class Rows(Protocol):
    """Where the backend's tasks are: a gateway over REST, or this
    project's database. Answers are tasks as `GET /tasks/<id>` shows them."""

    def module(self, wasm: bytes) -> str: ...

    def submit(self, body: dict[str, Any]) -> dict[str, Any]: ...

    def get(self, task_id: str) -> dict[str, Any]: ...


class ClusterBackend(BaseTaskBackend):
    """Runs wasm_tasks on the cluster. `OPTIONS`: `url` (a gateway's base
    URL; absent: this project's own database), `token` (an API token),
    `timeout` (seconds per request, default 30). `QUEUES` limits the
    queue names tasks may use (default: any; the workers decide which
    they serve)."""

    supports_defer = True
    supports_get_result = True
    supports_priority = True

    def __init__(self, alias: str, params: dict[str, Any]) -> None:
        super().__init__(alias, params)
        self.queues = set(params.get("QUEUES", ()))
        url = self.options.get("url")
        self._rows: Rows
        if url:
            from tasks_app.django_tasks.gateway_rows import GatewayRows

            self._rows = GatewayRows(
                url,
                token=self.options.get("token"),
                timeout=float(self.options.get("timeout", DEFAULT_TIMEOUT)),
            )
        else:
            from tasks_app.django_tasks.database_rows import DatabaseRows

            self._rows = DatabaseRows()

    def validate_task(self, task: Task[Any, Any]) -> None:
        super().validate_task(task)
        _as_wasm_task(task)

    def enqueue(self, task: Task[Any, Any], args: Any, kwargs: Any) -> TaskResult[Any]:
        self.validate_task(task)
        wasm = _as_wasm_task(task)
        if args:
            raise InvalidTaskError("a wasm_task takes the task's fields as keywords only")
        body = task_body(wasm, dict(kwargs), module=self._module(wasm.module), now=timezone.now())
        answer = self._rows.submit(body)
        result = task_result(wasm, answer, backend=self.alias, kwargs=task_kwargs(body))
        task_enqueued.send(type(self), task_result=result)
        return result

    def get_result(self, result_id: str) -> TaskResult[Any]:
        answer = self._rows.get(result_id)
        task = WasmTask(
            func=run_module,
            module=str(answer.get("module") or ""),
            priority=int(answer.get("priority", 0)),
            queue_name=str(answer.get("queue", DEFAULT_TASK_QUEUE_NAME)),
            backend=self.alias,
        )
        return task_result(task, answer, backend=self.alias, kwargs=task_kwargs(answer))

    def _module(self, module: ModuleRef) -> str:
        """The sha256 of the task's module, stored first if it is a file or
        bytes (once per content: the same bytes again are not sent again)."""
        if is_sha256(module):
            return str(module)
        if isinstance(module, bytes):
            return self._rows.module(module)
        try:
            wasm = Path(module).read_bytes()
        except OSError as exc:
            raise InvalidTaskError(f"cannot read the module {module}: {exc.strerror}") from None
        return self._rows.module(wasm)


def _as_wasm_task(task: Task[Any, Any]) -> WasmTask:
    if not isinstance(task, WasmTask) or not task.module:
        raise InvalidTaskError(
            "ClusterBackend runs WebAssembly modules: make the task with "
            "tasks_app.django_tasks.wasm_task(module)"
        )
    return task
