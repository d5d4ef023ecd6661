"""The JSON task object (`POST /tasks` with `Content-Type: application/json`,
and each of `POST /tasks/batch`'s `tasks`): its shape, parsed into a
`jobs.JobSpec`. The rules beyond the shape (sizes, what is not supported
yet, which module) are the services' (tasks_app/jobs.py)."""

from __future__ import annotations

import base64
import binascii
import math
import re
from typing import Any

from django.conf import settings
from rest_framework import serializers
from rest_framework.fields import empty

from tasks_app.api.errors import first_error
from tasks_app.api.serializers import TASK_ID_PATTERN, TaskSubmissionSerializer, _shared
from tasks_app.exceptions import InvalidBatchItem, InvalidField
from tasks_app.jobs import JobSpec

SHA256_PATTERN = r"^[0-9a-f]{64}$"
_NUMBERS = (serializers.IntegerField, serializers.FloatField)


class StrictCharField(serializers.CharField):
    """A JSON string and nothing else (DRF's CharField turns 5 into "5"),
    kept as sent, without NUL (a WASI command's strings are C strings)."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("trim_whitespace", False)
        kwargs.setdefault("allow_blank", True)
        super().__init__(**kwargs)

    def to_internal_value(self, data: Any) -> str:
        if not isinstance(data, str):
            raise serializers.ValidationError("must be a string")
        if "\x00" in data:
            raise serializers.ValidationError("must not contain NUL characters")
        return str(super().to_internal_value(data))


def _env_name(name: str) -> None:
    if not name or "=" in name or "\x00" in name:
        raise serializers.ValidationError(
            f"variable names must be non-empty, without '=' or NUL (got {name[:50]!r})"
        )


def _string_map(**kwargs: Any) -> serializers.DictField:
    return serializers.DictField(child=StrictCharField(), **kwargs)


class JobSerializer(TaskSubmissionSerializer):
    """One task as JSON. The seed's form fields mean what they mean there
    (`id` is optional here: the gateway makes one); the rest is new."""

    wasm = None  # type: ignore[assignment]  # the form's file upload: module or wasm_base64 here
    complete = None  # type: ignore[assignment]  # the seed's curl only
    id = serializers.RegexField(
        TASK_ID_PATTERN,
        max_length=200,
        required=False,
        error_messages={
            "invalid": "must be 1-200 characters: letters, digits and . _ : @ + - "
            "(starting with a letter or digit)"
        },
        help_text="Optional. The task's name, unique (a duplicate is a 409); absent: the "
        "gateway makes one (32 hex digits).",
    )
    module = serializers.RegexField(
        SHA256_PATTERN,
        required=False,
        error_messages={"invalid": "must be a stored module's sha256: 64 lowercase hex digits"},
        help_text="A stored module's SHA-256 (`POST /modules`). Give this or `wasm_base64`.",
    )
    wasm_base64 = serializers.CharField(
        required=False,
        trim_whitespace=False,
        help_text="The module itself, base64 (standard alphabet, padded), checked and stored "
        "as an upload is. Give this or `module`; big modules are best uploaded once with "
        "`POST /modules`.",
    )
    args = serializers.ListField(
        child=StrictCharField(),
        required=False,
        allow_null=True,
        default=None,
        help_text="A WASI command's argv after argv[0] (strings, at most "
        f"{settings.WW_TASKS.task_max_args}: WW_TASK_MAX_ARGS, "
        f"{settings.WW_TASKS.task_args_max_bytes} bytes together: WW_TASK_ARGS_MAX_BYTES). "
        "Absent or null: the seed's [input, difficulty].",
    )
    stdin = StrictCharField(
        required=False,
        help_text="Text on the module's standard input (UTF-8, at most "
        f"{settings.WW_TASKS.task_stdin_max_bytes} bytes: WW_TASK_STDIN_MAX_BYTES). "
        "Not with `stdin_base64`.",
    )
    stdin_base64 = serializers.CharField(
        required=False,
        trim_whitespace=False,
        help_text="Bytes on the module's standard input, base64. Not with `stdin`.",
    )
    env = _string_map(
        required=False,
        default=dict,
        help_text="The module's environment: names to string values (nothing else reaches "
        f"it; at most {settings.WW_TASKS.task_max_env} variables: WW_TASK_MAX_ENV, "
        f"{settings.WW_TASKS.task_env_max_bytes} bytes together: WW_TASK_ENV_MAX_BYTES).",
    )
    priority = serializers.IntegerField(
        required=False,
        default=0,
        min_value=-100,
        max_value=100,
        help_text="-100 to 100 (default 0): when more runs are due than workers have free "
        "slots, higher first; within a priority, earlier due first.",
    )
    queue = serializers.CharField(
        required=False,
        default="default",
        max_length=100,
        help_text='The queue a worker must serve (default "default"; runworker --queues): '
        "until one is connected, the runs wait.",
    )
    constraints = _string_map(
        required=False,
        default=dict,
        help_text="Labels a worker must have, label to value (runworker --labels): until one "
        "is connected, the runs wait.",
    )
    replicas = serializers.IntegerField(
        required=False,
        default=1,
        min_value=1,
        max_value=5,
        help_text="Workers that run each run, 1-5 (default 1). Not supported yet: only 1.",
    )
    fuel = serializers.IntegerField(
        required=False,
        allow_null=True,
        default=None,
        min_value=1,
        max_value=2**63 - 1,
        help_text="A run's budget of executed instructions. Not supported yet: only null.",
    )

    def to_internal_value(self, data: Any) -> Any:
        if not isinstance(data, dict):
            raise serializers.ValidationError({"task": ["must be a JSON object"]})
        unknown = sorted(set(data) - set(self.fields))
        if unknown:
            raise serializers.ValidationError({unknown[0]: ["is not a field of a task"]})
        for name, value in data.items():
            if isinstance(value, bool) and isinstance(self.fields[name], _NUMBERS):
                raise serializers.ValidationError({name: ["must be a number"]})
        return super().to_internal_value(data)

    def validate_env(self, env: dict[str, str]) -> dict[str, str]:
        for name in env:
            _env_name(str(name))
        return env

    def validate_constraints(self, constraints: dict[str, str]) -> dict[str, str]:
        if any(not str(label) for label in constraints):
            raise serializers.ValidationError("labels must be non-empty")
        return constraints


def _base64(value: str, field: str) -> bytes:
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise InvalidField(field, "must be base64 (standard alphabet, padded)") from None


# -- the plain path: a task object every value of which is plainly valid is
# read by these checks, at a fraction of the serializer's cost (a batch of
# 10,000); anything else goes the serializer's way, which says what is wrong.

_TASK_ID = re.compile(TASK_ID_PATTERN)
_SHA256 = re.compile(SHA256_PATTERN)


def _plain_str(value: Any, max_length: int | None = None, blank: bool = True) -> bool:
    return (
        isinstance(value, str)
        and "\x00" not in value
        and (max_length is None or len(value) <= max_length)
        and (blank or value.strip() == value != "")
    )


def _plain_strings(value: Any) -> bool:
    return isinstance(value, dict) and all(
        _plain_str(k, blank=False) and _plain_str(v) for k, v in value.items()
    )


def _plain_number(field: Any, value: Any) -> bool:
    kinds = int if isinstance(field, serializers.IntegerField) else (int, float)
    return (
        isinstance(value, kinds)
        and not isinstance(value, bool)
        and math.isfinite(value)
        and (field.min_value is None or value >= field.min_value)
        and (field.max_value is None or value <= field.max_value)
    )


def _plain_value(name: str, field: Any, value: Any) -> bool:
    if isinstance(field, _NUMBERS):
        return (value is None and name == "fuel") or _plain_number(field, value)
    if name == "id":
        return isinstance(value, str) and _TASK_ID.fullmatch(value) is not None
    if name == "module":
        return isinstance(value, str) and _SHA256.fullmatch(value) is not None
    if name == "args":
        return value is None or (isinstance(value, list) and all(map(_plain_str, value)))
    if name == "env":
        return _plain_strings(value) and all("=" not in k for k in value)
    if name == "constraints":
        return _plain_strings(value)
    if name == "queue":
        return _plain_str(value, 100, blank=False)
    return _plain_str(value, getattr(field, "max_length", None))


def _plain_values(data: Any) -> dict[str, Any] | None:
    fields = _shared(JobSerializer).fields
    if not isinstance(data, dict):
        return None
    values: dict[str, Any] = {}
    for name, value in data.items():
        field = fields.get(name)
        if field is None or not _plain_value(name, field, value):
            return None
        values[name] = float(value) if isinstance(field, serializers.FloatField) else value
    for name, field in fields.items():
        if name not in values and field.default is not empty:
            default = field.default
            values[name] = default() if callable(default) else default
    return values


def job_spec(data: Any) -> JobSpec:
    """One JSON task object as the services take it. A ValidationError or
    InvalidField names the first bad field."""
    values = _plain_values(data)
    if values is None:
        values = _shared(JobSerializer).run_validation(data)
    module, wasm_text = values.get("module"), values.get("wasm_base64")
    if (module is None) == (wasm_text is None):
        raise InvalidField("module", "give exactly one of module (a sha256) and wasm_base64")
    if "stdin" in values and "stdin_base64" in values:
        raise InvalidField("stdin", "give stdin or stdin_base64, not both")
    if "stdin_base64" in values:
        stdin = _base64(values["stdin_base64"], "stdin_base64")
    else:
        stdin = values.get("stdin", "").encode("utf-8")
    return JobSpec(
        id=values.get("id"),
        module=module,
        wasm=None if wasm_text is None else _base64(wasm_text, "wasm_base64"),
        description=values["description"],
        duration=values["duration"],
        start=values["start"],
        delay=values["delay"],
        repeats=values["repeats"],
        input=values["input"],
        difficulty=values["difficulty"],
        retries=values["retries"],
        args=values["args"],
        stdin=stdin,
        env=dict(values["env"]),
        priority=values["priority"],
        queue=values["queue"],
        constraints=dict(values["constraints"]),
        replicas=values["replicas"],
        fuel=values["fuel"],
    )


def batch_specs(data: Any) -> list[JobSpec]:
    """`{"tasks": [...]}` as JobSpecs, in order; InvalidBatchItem names the
    first bad task's index and field, InvalidField a bad `tasks`."""
    limit = settings.WW_TASKS.batch_max_tasks
    if not isinstance(data, dict):
        raise InvalidField("tasks", 'the body must be a JSON object {"tasks": [...]}')
    unknown = sorted(set(data) - {"tasks"})
    if unknown:
        raise InvalidField(unknown[0], "is not a field of a batch")
    tasks = data.get("tasks")
    if not isinstance(tasks, list) or not tasks:
        raise InvalidField("tasks", "must be a non-empty list of task objects")
    if len(tasks) > limit:
        raise InvalidField("tasks", f"at most {limit} tasks (WW_BATCH_MAX_TASKS), not {len(tasks)}")
    specs = []
    for index, task in enumerate(tasks):
        try:
            specs.append(job_spec(task))
        except InvalidField as exc:
            raise InvalidBatchItem(index, exc.field, exc.problem) from None
        except serializers.ValidationError as exc:
            field, problem = first_error(exc.detail)
            raise InvalidBatchItem(index, field, problem) from None
    return specs
