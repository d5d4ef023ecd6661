"""Schedules over REST: `POST /schedules`, `GET /schedules`,
`GET|PATCH|DELETE /schedules/<name>`, `POST /schedules/<name>/trigger`.

A schedule's body is its own fields (name, module, every or cron, ...) and,
beside them, the JSON task fields every firing is made with (as `POST
/tasks` takes them, without id, start, delay, repeats: a firing is one run
at its fire time). The views translate HTTP to tasks_app.schedule_services."""

from __future__ import annotations

import base64
from typing import Any

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from tasks_app import fire_times, jobs, schedule_services
from tasks_app.api.job_serializers import SHA256_PATTERN, JobSerializer, job_spec
from tasks_app.api.pagination import paginate
from tasks_app.api.parsers import BoundedJSONParser
from tasks_app.api.serializers import ErrorSerializer, task_job
from tasks_app.exceptions import InvalidField
from tasks_app.models import Schedule
from tasks_app.selectors import as_new

_ERROR = OpenApiResponse(ErrorSerializer, description="JSON naming the field and the problem")
# The task fields a firing does not take from its schedule.
_NOT_TEMPLATE = {"id", "start", "delay", "repeats", "module", "wasm_base64"}
TEMPLATE_FIELDS = sorted(set(JobSerializer().fields) - _NOT_TEMPLATE)


class ScheduleFieldsSerializer(serializers.Serializer):
    """A schedule's own fields (the task template fields go beside them)."""

    name = serializers.RegexField(
        fire_times.NAME_PATTERN,
        error_messages={
            "invalid": "must be 1-100 characters: letters, digits and . _ : + - (no @)"
        },
        help_text="Unique; each firing's task id is `<name>@<fire time, UTC, ISO 8601>`.",
    )
    module = serializers.RegexField(
        SHA256_PATTERN,
        error_messages={"invalid": "must be a stored module's sha256: 64 lowercase hex digits"},
        help_text="A stored module's SHA-256 (`POST /modules`).",
    )
    every = serializers.FloatField(
        required=False,
        allow_null=True,
        min_value=0.000001,
        max_value=366 * 86400,
        help_text="Seconds between fire times (fractions allowed). Give this or `cron`.",
    )
    cron = serializers.CharField(
        required=False,
        allow_blank=True,
        max_length=200,
        help_text="5 fields, or 6 with seconds first. Give this or `every`.",
    )
    timezone = serializers.CharField(
        required=False, default="UTC", max_length=64, help_text="IANA zone `cron` follows"
    )
    start_at = serializers.DateTimeField(required=False, allow_null=True, default=None)
    end_at = serializers.DateTimeField(required=False, allow_null=True, default=None)
    max_runs = serializers.IntegerField(
        required=False, allow_null=True, default=None, min_value=1, max_value=2**31 - 1
    )
    jitter = serializers.FloatField(
        required=False,
        default=0,
        min_value=0,
        max_value=366 * 86400,
        help_text="A firing's run is due up to this many seconds after its fire time "
        "(a hash of its id says how much), always before the next fire time.",
    )
    overlap = serializers.ChoiceField(
        choices=Schedule.Overlap.values,
        required=False,
        default=Schedule.Overlap.SKIP,
        help_text="When a firing is due while the previous firing's run still runs: skip "
        "(it ends cancelled, with the reason), buffer_one (it waits; one at most), allow.",
    )
    catchup_window = serializers.FloatField(
        required=False,
        default=60,
        min_value=0,
        max_value=366 * 86400,
        help_text="After no gateway ran: missed fire times younger than this run once each, "
        "older ones are recorded as skipped.",
    )
    paused = serializers.BooleanField(required=False, default=False)


def _split(data: Any, *, partial: bool) -> tuple[dict[str, Any], dict[str, Any]]:
    """(schedule fields, template fields) of a body, both checked for shape."""
    if not isinstance(data, dict):
        raise InvalidField("body", "must be a JSON object")
    own = set(ScheduleFieldsSerializer().fields)
    unknown = sorted(set(data) - own - set(TEMPLATE_FIELDS))
    if unknown:
        field = unknown[0]
        if field in _NOT_TEMPLATE:
            raise InvalidField(field, "not a field of a schedule (a firing is one run)")
        raise InvalidField(field, "is not a field of a schedule")
    fields = ScheduleFieldsSerializer(
        data={k: v for k, v in data.items() if k in own}, partial=partial
    )
    fields.is_valid(raise_exception=True)
    values = dict(fields.validated_data)
    if partial:
        values = {k: v for k, v in values.items() if k in data}
    return values, {k: v for k, v in data.items() if k in TEMPLATE_FIELDS}


def template_of(module: str, fields: dict[str, Any]) -> dict[str, Any]:
    """The task fields every firing is made with, checked as a JSON task's."""
    spec = job_spec({**fields, "module": module})
    jobs.check(spec)
    return {
        "description": spec.description,
        "duration": spec.duration,
        "input": spec.input,
        "difficulty": spec.difficulty,
        "retries": spec.retries,
        "args": spec.args,
        "stdin_base64": base64.b64encode(spec.stdin).decode("ascii"),
        "env": spec.env,
        "priority": spec.priority,
        "queue": spec.queue,
        "constraints": spec.constraints,
        "replicas": spec.replicas,
        "fuel": spec.fuel,
    }


def _template_fields(template: dict[str, Any]) -> dict[str, Any]:
    """A stored template as the task fields it was given as."""
    fields = {k: v for k, v in template.items() if k != "stdin_base64"}
    stdin = template.get("stdin_base64", "")
    if stdin:
        fields["stdin_base64"] = stdin
    return fields


def represent(schedule: Schedule, *, detail: bool = False) -> dict[str, Any]:
    body: dict[str, Any] = {
        "name": schedule.name,
        "module": schedule.module_id,
        "every": schedule.every,
        "cron": schedule.cron or None,
        "timezone": schedule.timezone,
        "start_at": _iso(schedule.start_at),
        "end_at": _iso(schedule.end_at),
        "max_runs": schedule.max_runs,
        "jitter": schedule.jitter,
        "overlap": schedule.overlap,
        "catchup_window": schedule.catchup_window,
        "paused": schedule.paused,
        "template": schedule.template,
        "next_fire_at": _iso(schedule.next_fire_at),
        "fired_count": schedule.fired_count,
        "skipped_count": schedule.skipped_count,
        "created_at": _iso(schedule.created_at),
        "updated_at": _iso(schedule.updated_at),
    }
    if detail:
        body["next_fire_times"] = [
            _iso(at) for at in schedule_services.next_fire_times(schedule, 5)
        ]
        body["last_firings"] = [
            {
                "task": row.task_id,
                "fire_at": _iso(row.fire_at),
                "due_at": _iso(row.due_at),
                "state": row.state,
                "error": row.error,
                "finished_at": _iso(row.finished_at),
            }
            for row in schedule_services.last_firings(schedule, 10)
        ]
        body["missed"] = [
            {
                "first_fire_at": _iso(m.first_fire_at),
                "last_fire_at": _iso(m.last_fire_at),
                "count": m.count,
                "exact": m.exact,
                "recorded_at": _iso(m.recorded_at),
            }
            for m in schedule_services.missed(schedule)
        ]
    return body


def _iso(at: Any) -> str | None:
    return None if at is None else at.isoformat()


class ScheduleListView(APIView):
    """`GET /schedules` (by name), `POST /schedules`."""

    parser_classes = [BoundedJSONParser]

    @extend_schema(
        operation_id="schedules_list",
        summary="List schedules",
        description="A JSON array by name, paginated as `GET /tasks` is.",
        responses={200: OpenApiTypes.OBJECT, 400: _ERROR},
    )
    def get(self, request: Request) -> Response:
        page = paginate(Schedule.objects.order_by("name"), request)
        return Response([represent(s) for s in page.items], headers=page.headers)

    @extend_schema(
        operation_id="schedules_create",
        summary="Create a schedule",
        description="A periodic task: `every` seconds or `cron`, with the JSON task fields "
        "every firing is made with. Each firing is a task `<name>@<fire time>`.",
        request={"application/json": ScheduleFieldsSerializer},
        responses={201: OpenApiTypes.OBJECT, 400: _ERROR, 409: _ERROR},
    )
    def post(self, request: Request) -> Response:
        values, fields = _split(request.data, partial=False)
        values["template"] = template_of(values["module"], fields)
        values["module_id"] = values.pop("module")
        values["cron"] = values.get("cron") or ""
        schedule = schedule_services.create_schedule(**values)
        return Response(
            represent(schedule, detail=True),
            status=201,
            headers={"Location": f"/schedules/{schedule.name}"},
        )


class ScheduleDetailView(APIView):
    """`GET`, `PATCH`, `DELETE /schedules/<name>`."""

    parser_classes = [BoundedJSONParser]

    @extend_schema(
        operation_id="schedules_retrieve",
        summary="One schedule",
        description="With its next 5 fire times, its last firings (task, state) and the "
        "fire times missed while no gateway ran.",
        responses={200: OpenApiTypes.OBJECT, 404: _ERROR},
    )
    def get(self, request: Request, name: str) -> Response:
        return Response(represent(schedule_services.get_schedule(name), detail=True))

    @extend_schema(
        operation_id="schedules_partial_update",
        summary="Change a schedule",
        description="Any field but `name`; task fields change the template (merged). "
        "A change of when it fires moves its next firing; `paused` pauses or resumes it.",
        request={"application/json": OpenApiTypes.OBJECT},
        responses={200: OpenApiTypes.OBJECT, 400: _ERROR, 404: _ERROR},
    )
    def patch(self, request: Request, name: str) -> Response:
        schedule = schedule_services.get_schedule(name)
        data = request.data
        if isinstance(data, dict) and "name" in data and data["name"] != name:
            raise InvalidField("name", "a schedule's name does not change")
        if isinstance(data, dict):
            data = {k: v for k, v in data.items() if k != "name"}
        values, fields = _split(data, partial=True)
        module = values.pop("module", schedule.module_id)
        if fields or module != schedule.module_id:
            merged = {**_template_fields(schedule.template), **fields}
            if "stdin" in fields:
                merged.pop("stdin_base64", None)
            if "stdin_base64" in fields:
                merged.pop("stdin", None)
            values["template"] = template_of(module, merged)
        if "cron" in values:
            values["cron"] = values["cron"] or ""
        if values.get("cron"):
            values.setdefault("every", None)
        elif values.get("every") is not None:
            values.setdefault("cron", "")
        updated = schedule_services.update_schedule(name, module=module, **values)
        return Response(represent(updated, detail=True))

    @extend_schema(
        operation_id="schedules_destroy",
        summary="Delete a schedule",
        description="Its next firing, not started, is cancelled; its firings stay as tasks.",
        responses={204: None, 404: _ERROR},
    )
    def delete(self, request: Request, name: str) -> Response:
        schedule_services.delete_schedule(name)
        return Response(status=204)


class ScheduleTriggerView(APIView):
    """`POST /schedules/<name>/trigger`: one firing now."""

    @extend_schema(
        operation_id="schedules_trigger",
        summary="Fire a schedule now",
        description="One firing now, besides its fire times (it does not count for "
        "max_runs, and runs even while the schedule is paused). 201 with the firing's task.",
        request=None,
        responses={201: OpenApiTypes.OBJECT, 404: _ERROR},
    )
    def post(self, request: Request, name: str) -> Response:
        task = schedule_services.trigger_schedule(name)
        return Response(
            task_job(as_new(task)), status=201, headers={"Location": f"/tasks/{task.pk}"}
        )
