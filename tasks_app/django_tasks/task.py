"""`wasm_task(module)`: a Django `Task` whose work is one run of a
WebAssembly module."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from django_tasks.base import DEFAULT_TASK_BACKEND_ALIAS, DEFAULT_TASK_QUEUE_NAME, Task

from tasks_app.django_tasks.errors import RunsOnTheCluster

ModuleRef = str | os.PathLike[str] | bytes
ReturnValue = str | bytes

_SHA256 = re.compile(r"[0-9a-f]{64}")


def run_module(**task_fields: Any) -> ReturnValue:
    """The function of every wasm_task. The module runs on the cluster's
    workers, never in this process."""
    raise RunsOnTheCluster("a wasm_task runs on the cluster's workers: call .enqueue()")


@dataclass(frozen=True, slots=True, kw_only=True)
class WasmTask(Task[..., ReturnValue]):
    """A Django `Task` whose work is one run of a WebAssembly module: a
    path to a .wasm file, its bytes, or the sha256 of a stored module."""

    module: ModuleRef = ""
    label: str | None = None  # the task's name (default: the file's stem)

    @property
    def name(self) -> str:
        if self.label:
            return self.label
        if isinstance(self.module, bytes) or is_sha256(self.module):
            return "wasm"
        return Path(self.module).stem or "wasm"


def wasm_task(
    module: ModuleRef,
    *,
    name: str | None = None,
    queue_name: str = DEFAULT_TASK_QUEUE_NAME,
    priority: int = 0,
    backend: str = DEFAULT_TASK_BACKEND_ALIAS,
) -> WasmTask:
    """A Task whose `enqueue(**task_fields)` submits one run of `module`
    (`task_fields`: the JSON task's fields, e.g. input, difficulty, args,
    stdin, env, duration, retries, constraints, fuel; not repeats or
    delay). `run_after` (`.using(run_after=...)`) becomes the run's due
    time; `priority` and `queue_name` become the task's."""
    return WasmTask(
        func=run_module,
        module=module,
        label=name,
        queue_name=queue_name,
        priority=priority,
        backend=backend,
    )


def is_sha256(module: ModuleRef) -> bool:
    return isinstance(module, str) and _SHA256.fullmatch(module) is not None
