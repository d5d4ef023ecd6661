"""Shapes of what the API takes and gives. Rules about tasks live in
`tasks_app.services`; these only parse and present."""

from __future__ import annotations

import base64
import functools
import math
from typing import Any, TypeVar

from django.conf import settings
from drf_spectacular.utils import extend_schema_serializer
from rest_framework import serializers

from tasks_app import fire_times
from tasks_app.models import Attempt, Iteration, Task
from tasks_app.progress import task_state

INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
TASK_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:@+-]{0,199}$"


class SecondsField(serializers.FloatField):
    """Seconds as a finite number; shown as an integer when it is one (the
    seed's JSON had integers)."""

    def to_internal_value(self, data: Any) -> float:
        value = super().to_internal_value(data)
        if not math.isfinite(value):
            raise serializers.ValidationError("must be a finite number of seconds")
        return value

    def to_representation(self, value: float) -> float | int:  # type: ignore[override]  # a number, not text
        value = float(value)
        return int(value) if value.is_integer() else value


def _mib(n: int) -> str:
    return f"{n / 2**20:g} MiB"


class TaskSubmissionSerializer(serializers.Serializer):
    """The seed's multipart form, field for field. Every field but `id` and
    `wasm` is optional. The help texts are the API's documentation (the
    OpenAPI schema's descriptions), limits read from the settings."""

    id = serializers.RegexField(
        TASK_ID_PATTERN,
        max_length=200,
        error_messages={
            "invalid": "must be 1-200 characters: letters, digits and . _ : @ + - "
            "(starting with a letter or digit)"
        },
        help_text="Required. The task's name, unique: a duplicate is a 409 and the first "
        "task stays. 1-200 characters: letters, digits and `. _ : @ + -`, starting with a "
        "letter or digit.",
    )
    description = serializers.CharField(
        required=False,
        allow_blank=True,
        max_length=10_000,
        default="",
        trim_whitespace=False,
        help_text="Optional. Free text, up to 10,000 characters (default empty).",
    )
    complete = serializers.IntegerField(
        required=False,
        min_value=0,
        help_text="Optional, accepted and ignored: the seed's form sends `0`. A task's "
        "completions always start at 0 and count its succeeded runs. If sent, an integer "
        "of 0 or more.",
    )
    duration = SecondsField(
        required=False,
        default=0,
        min_value=0,
        max_value=settings.WW_TASKS.max_duration,
        help_text="Optional. Time limit of one run, in seconds (fractions allowed), at most "
        f"{settings.WW_TASKS.max_duration:g} (WW_MAX_DURATION). "
        "0 or absent: the gateway's default, "
        f"{settings.WW_TASKS.default_duration:g} s (WW_DEFAULT_DURATION). A run over it ends "
        "`timed_out`.",
    )
    start = SecondsField(
        required=False,
        default=0,
        min_value=0,
        max_value=settings.WW_TASKS.max_offset,
        help_text="Optional. Seconds after receipt before the first run (fractions allowed; "
        f"default 0, at most {settings.WW_TASKS.max_offset:g}: WW_MAX_OFFSET).",
    )
    delay = SecondsField(
        required=False,
        default=0,
        min_value=0,
        max_value=settings.WW_TASKS.max_offset,
        help_text="Optional. Seconds between the starts of consecutive runs: run k is due at "
        "receipt + start + k·delay, whatever the runs before it take (fractions allowed; "
        f"default 0, at most {settings.WW_TASKS.max_offset:g}: WW_MAX_OFFSET).",
    )
    repeats = serializers.IntegerField(
        required=False,
        default=1,
        min_value=0,
        max_value=settings.WW_TASKS.max_repeats,
        help_text="Optional. Number of runs; 0 or 1 means one run (default 1, at most "
        f"{settings.WW_TASKS.max_repeats}: WW_MAX_REPEATS).",
    )
    input = serializers.IntegerField(
        required=False,
        default=0,
        min_value=INT64_MIN,
        max_value=INT64_MAX,
        help_text="Optional. The first integer given to the module (signed 64-bit, default "
        "0): `run(input, difficulty)`'s first argument, or a WASI command's argv[1].",
    )
    difficulty = serializers.IntegerField(
        required=False,
        default=0,
        min_value=INT64_MIN,
        max_value=INT64_MAX,
        help_text="Optional. The second integer given to the module (signed 64-bit, default "
        "0): `run`'s second argument, or a WASI command's argv[2].",
    )
    wasm = serializers.FileField(
        allow_empty_file=False,
        use_url=False,
        help_text="Required. The module, as a file upload, at most "
        f"{_mib(settings.WW_TASKS.module_max_bytes)} (WW_MODULE_MAX_BYTES; larger is a 413): "
        "WebAssembly exporting `run(input, difficulty)` with i32 or i64 parameters and "
        "result (the result is shown in decimal, read as unsigned at its width: an i64 -1 "
        "is 18446744073709551615, an i32 -1 is 4294967295) or a WASI command exporting "
        "`_start` (argv is [task id, input, difficulty]; the result is its stdout, bounded).",
    )
    retries = serializers.IntegerField(
        required=False,
        default=0,
        min_value=0,
        max_value=10,
        help_text="Optional, not in the seed. Extra attempts for a run that traps or times "
        "out (default 0, at most 10).",
    )


class TaskSerializer(serializers.ModelSerializer):
    """A task as `GET /tasks` lists it (the seed's keys, and progress)."""

    completions = serializers.IntegerField(read_only=True)
    runs = serializers.IntegerField(source="run_count", read_only=True)
    state = serializers.SerializerMethodField()
    duration = SecondsField()
    start = SecondsField()
    delay = SecondsField()
    module = serializers.CharField(source="module_id")
    next_due_at = serializers.DateTimeField(read_only=True, allow_null=True)

    class Meta:
        model = Task
        fields = [
            "id",
            "description",
            "completions",
            "runs",
            "state",
            "duration",
            "start",
            "delay",
            "repeats",
            "input",
            "difficulty",
            "retries",
            "module",
            "received_at",
            "next_due_at",
            "cancelled_at",
        ]

    def get_state(self, task: Task) -> str:
        return task_state(
            runs=task.run_count,
            finished=getattr(task, "runs_finished", 0),
            succeeded=getattr(task, "completions", 0),
            failed=getattr(task, "runs_failed", 0),
            running=getattr(task, "runs_running", 0),
        )


class OutputFields(serializers.Serializer):
    """A run's (or attempt's) output: `result` as text when it is UTF-8,
    else `result_base64`; whether it was cut; WASI stderr."""

    result_base64 = serializers.SerializerMethodField(
        help_text="the output, base64, when it is not UTF-8 text (then `result` is empty); "
        "else null. The raw bytes: GET /tasks/<id>/runs/<index>/output"
    )

    def get_result_base64(self, row: Iteration | Attempt) -> str | None:
        raw = row.result_bytes
        return None if raw is None else base64.b64encode(bytes(raw)).decode("ascii")


OUTPUT_FIELDS = ["result_base64", "result_truncated", "stderr"]


class AttemptSerializer(OutputFields, serializers.ModelSerializer):
    worker = serializers.CharField(source="worker_peer_id")

    class Meta:
        model = Attempt
        fields = [
            "number",
            "worker",
            "sent_at",
            "started_at",
            "finished_at",
            "outcome",
            "result",
            *OUTPUT_FIELDS,
            "error",
            "exit_code",
        ]


class RunSerializer(OutputFields, serializers.ModelSerializer):
    """One scheduled run, with its last attempt's worker and timings."""

    worker = serializers.SerializerMethodField()
    started_at = serializers.SerializerMethodField()
    attempts = AttemptSerializer(many=True, read_only=True)

    class Meta:
        model = Iteration
        fields = [
            "index",
            "due_at",
            "state",
            "worker",
            "started_at",
            "finished_at",
            "result",
            *OUTPUT_FIELDS,
            "error",
            "attempts",
        ]

    def _last(self, run: Iteration) -> Attempt | None:
        attempts = list(run.attempts.all())
        return attempts[-1] if attempts else None

    def get_worker(self, run: Iteration) -> str | None:
        last = self._last(run)
        return last.worker_peer_id if last else None

    def get_started_at(self, run: Iteration) -> str | None:
        last = self._last(run)
        if last is None or last.started_at is None:
            return None
        return serializers.DateTimeField().to_representation(last.started_at)


class RunsByStateSerializer(serializers.Serializer):
    """A task's runs counted by state; every state is present."""

    pending = serializers.IntegerField(help_text="not started yet")
    running = serializers.IntegerField(help_text="sent to a worker, not ended")
    succeeded = serializers.IntegerField()
    failed = serializers.IntegerField(help_text="trapped, or the module was refused")
    timed_out = serializers.IntegerField(help_text="stopped at the time limit (`duration`)")
    cancelled = serializers.IntegerField(help_text="never started, or interrupted, by a cancel")


@extend_schema_serializer(component_name="TaskSummary")
class TaskSummarySerializer(TaskSerializer):
    """A task as `GET /tasks` lists it, with its runs counted by state
    (`DELETE /tasks/<id>` answers this)."""

    runs_by_state = RunsByStateSerializer(
        read_only=True,
        help_text="every run of the task counted by state (in `GET /tasks/<id>`: all of "
        "them, not only the page's)",
    )

    class Meta(TaskSerializer.Meta):
        fields = [*TaskSerializer.Meta.fields, "runs_by_state"]


class JobFields(serializers.Serializer):
    """What a task's runs are given beyond the seed's two integers (its
    JSON submission's fields): `stdin` as text when it is UTF-8, else
    `stdin_base64`."""

    stdin = serializers.SerializerMethodField(
        help_text="the runs' standard input as text (UTF-8), or null: see `stdin_base64`"
    )
    stdin_base64 = serializers.SerializerMethodField(
        help_text="the runs' standard input, base64, when it is not UTF-8; else null"
    )
    args = serializers.ListField(
        child=serializers.CharField(),
        allow_null=True,
        help_text="a WASI command's argv after argv[0]; null: [input, difficulty]",
    )
    env = serializers.DictField(child=serializers.CharField())
    constraints = serializers.DictField(child=serializers.CharField())
    schedule = serializers.SerializerMethodField(
        help_text="the schedule this task is a firing of (id `<name>@<fire time>`), or null"
    )

    def get_schedule(self, task: Task) -> str | None:
        if task.schedule_id is None:
            return None
        parsed = fire_times.parse_firing_id(task.pk)
        return None if parsed is None else parsed[0]

    def get_stdin(self, task: Task) -> str | None:
        try:
            return bytes(task.stdin).decode("utf-8")
        except UnicodeDecodeError:
            return None

    def get_stdin_base64(self, task: Task) -> str | None:
        raw = bytes(task.stdin)
        try:
            raw.decode("utf-8")
        except UnicodeDecodeError:
            return base64.b64encode(raw).decode("ascii")
        return None


JOB_FIELDS = [
    "args",
    "stdin",
    "stdin_base64",
    "env",
    "priority",
    "queue",
    "constraints",
    "replicas",
    "fuel",
    "schedule",
]


@extend_schema_serializer(component_name="TaskJob")
class TaskJobSerializer(JobFields, TaskSerializer):
    """A task as `GET /tasks` lists it and what its runs are given: the
    answer to a JSON `POST /tasks`."""

    class Meta(TaskSerializer.Meta):
        fields = [*TaskSerializer.Meta.fields, *JOB_FIELDS]


class TaskDetailSerializer(JobFields, TaskSummarySerializer):
    """`TaskSummarySerializer` and a page of its runs (`selectors.task_detail`'s
    `runs_page`) as `runs`; `runs` of the summary (the count) becomes
    `run_count`."""

    runs_detail = RunSerializer(source="runs_page", many=True, read_only=True)

    class Meta(TaskSummarySerializer.Meta):
        fields = [*TaskSummarySerializer.Meta.fields, *JOB_FIELDS, "runs_detail"]

    def to_representation(self, instance: Task) -> dict[str, Any]:
        data = super().to_representation(instance)
        data["runs"] = data.pop("runs_detail")
        data["run_count"] = instance.run_count
        return data


# -- one instance of each shape, shared ---------------------------------------
#
# DRF builds a serializer's fields anew for every instance (deep copies, and
# for a ModelSerializer a look at the model too): for a small submission that
# cost as much as parsing, validating and rendering it together. Validating
# (`run_validation`) and rendering (`to_representation`) keep no state on the
# serializer, so one instance of each shape serves every request and thread.

S = TypeVar("S", bound=serializers.Serializer)


@functools.cache
def _shared(shape: type[S]) -> S:
    serializer = shape()
    serializer.fields  # noqa: B018 - bind the fields now, not in a race later
    return serializer


def validate_submission(data: Any) -> dict[str, Any]:
    """The seed's form, validated (a ValidationError names each bad field)."""
    return _shared(TaskSubmissionSerializer).run_validation(data)


def submission_fields() -> dict[str, serializers.Field]:
    """The form's fields, bound (`tasks_app.api.submission` checks with them)."""
    return dict(_shared(TaskSubmissionSerializer).fields)


def task_summary(task: Task) -> dict[str, Any]:
    """A task as `GET /tasks` lists it."""
    return _shared(TaskSerializer).to_representation(task)


def task_job(task: Task) -> dict[str, Any]:
    """A task with what its runs are given, as a JSON `POST /tasks` answers it."""
    return _shared(TaskJobSerializer).to_representation(task)


def task_summaries(tasks: list[Task]) -> list[dict[str, Any]]:
    shape = _shared(TaskSerializer)
    return [shape.to_representation(task) for task in tasks]


def task_with_counts(task: Task) -> dict[str, Any]:
    """A task with its runs counted by state (`selectors.task_summary`), as
    `DELETE /tasks/<id>` answers it."""
    return _shared(TaskSummarySerializer).to_representation(task)


def task_detail(task: Task, *, runs_limit: int, runs_offset: int) -> dict[str, Any]:
    """A task with a page of its runs (`selectors.task_detail`), as
    `GET /tasks/<id>` gives it; the page's bounds beside it."""
    data = _shared(TaskDetailSerializer).to_representation(task)
    data["runs_offset"], data["runs_limit"] = runs_offset, runs_limit
    return data


# -- shapes for the OpenAPI document only (the views above produce them) ------


@extend_schema_serializer(component_name="TaskDetail")
class TaskDetailDocSerializer(JobFields, TaskSummarySerializer):
    """`GET /tasks/<id>`: a task with one page of its runs
    (TaskDetailSerializer's output)."""

    runs = RunSerializer(  # type: ignore[assignment]  # the detail's runs, the summary's count
        many=True,
        read_only=True,
        help_text="one page of the task's runs, by index: `runs_limit` runs from run "
        "`runs_offset` on (the next page is in the `Link` header)",
    )
    run_count = serializers.IntegerField(
        read_only=True, help_text="the task's runs in all: max(repeats, 1)"
    )
    runs_offset = serializers.IntegerField(
        read_only=True, help_text="index of the first run on this page"
    )
    runs_limit = serializers.IntegerField(read_only=True, help_text="the page's size asked for")
    waiting_for = serializers.CharField(
        read_only=True,
        allow_null=True,
        help_text="why its pending runs are not sent, when no connected worker serves its "
        "`queue` with every label of its `constraints` (they wait until one joins); null "
        "otherwise",
    )

    class Meta(TaskSummarySerializer.Meta):
        fields = [
            *TaskSummarySerializer.Meta.fields,
            *JOB_FIELDS,
            "run_count",
            "runs_offset",
            "runs_limit",
            "waiting_for",
        ]


class ErrorSerializer(serializers.Serializer):
    """Every error body: the field at fault and the problem."""

    field = serializers.CharField()
    problem = serializers.CharField()
    detail = serializers.CharField()
    errors = serializers.DictField(  # type: ignore[assignment]  # a field named errors, in the body
        required=False, help_text="every invalid field, on a 400"
    )
