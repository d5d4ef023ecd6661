"""Tasks submitted as JSON: `POST /tasks` with one task object (TaskListView
hands it here) and `POST /tasks/batch` with up to WW_BATCH_MAX_TASKS of
them, all or nothing."""

from __future__ import annotations

import hashlib
from typing import Any

from django.conf import settings
from django.db import transaction
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from tasks_app import jobs, selectors
from tasks_app.api.job_serializers import JobSerializer, batch_specs, job_spec
from tasks_app.api.parsers import BoundedJSONParser
from tasks_app.api.replies import answer
from tasks_app.api.serializers import ErrorSerializer, task_job
from tasks_app.api.submission import Submission
from tasks_app.idempotency import HEADER, Answer

IDEMPOTENCY_PARAMETER = OpenApiParameter(
    HEADER,
    str,
    location=OpenApiParameter.HEADER,
    description="Optional. The same key with the same body answers what the first request "
    "answered and stores nothing new (`Idempotent-Replayed: true`); with another body, 409. "
    "Kept at least WW_IDEMPOTENCY_HOURS (24 h).",
)


def is_json(request: Request) -> bool:
    media_type = (request.content_type or "").split(";", 1)[0].strip().lower()
    return media_type == "application/json"


def submission_content(submission: Submission) -> dict[str, Any]:
    """What identifies a form's content (its module by hash), for
    Idempotency-Key: a client's next multipart boundary is another."""
    fields = submission.fields()
    fields["wasm"] = hashlib.sha256(submission.wasm).hexdigest()
    return {"form": fields}


def post_json_task(request: Request) -> Response:
    """One JSON task object stored: 201 with the task and what its runs are given."""
    data = request.data
    spec = job_spec(data)

    def write() -> Answer:
        with transaction.atomic():
            task = jobs.create_job(spec)
            return Answer(201, task_job(selectors.as_new(task)))

    return answer(
        request,
        content=lambda: {"json": data},
        write=write,
        location=lambda body: f"/tasks/{body['id']}",
    )


class BatchSerializer(serializers.Serializer):
    """`POST /tasks/batch`'s body (for the OpenAPI document)."""

    tasks = JobSerializer(many=True, help_text="1 to WW_BATCH_MAX_TASKS (10,000) task objects")


class BatchIdsSerializer(serializers.Serializer):
    ids = serializers.ListField(child=serializers.CharField(), help_text="in the tasks' order")


class BatchErrorSerializer(ErrorSerializer):
    index = serializers.IntegerField(help_text="the position of the task at fault in `tasks`")


class TaskBatchView(APIView):
    """`POST /tasks/batch`: many JSON tasks, stored all or nothing."""

    parser_classes = [BoundedJSONParser]

    @property
    def body_max_bytes(self) -> int:
        return settings.WW_TASKS.batch_max_bytes

    @extend_schema(
        operation_id="tasks_batch",
        summary="Submit many tasks at once",
        description="Up to WW_BATCH_MAX_TASKS task objects (as a JSON `POST /tasks` takes "
        "one), in one transaction: all are stored, or none. A bad task is a 400 naming its "
        "index and field; an id that exists, a 409 naming it. The body may be at most "
        "WW_BATCH_MAX_BYTES (16 MiB; 413 past it).",
        request={"application/json": BatchSerializer},
        parameters=[IDEMPOTENCY_PARAMETER],
        responses={
            201: BatchIdsSerializer,
            400: OpenApiResponse(BatchErrorSerializer, description="which task, which field"),
            409: OpenApiResponse(BatchErrorSerializer, description="an id exists already"),
            413: OpenApiResponse(ErrorSerializer, description="the body is over the limit"),
        },
    )
    def post(self, request: Request) -> Response:
        data = request.data
        specs = batch_specs(data)

        def write() -> Answer:
            with transaction.atomic():
                stored = jobs.create_jobs(specs)
            return Answer(201, {"ids": [task.pk for task in stored.tasks]})

        return answer(request, content=lambda: {"batch": data}, write=write)
