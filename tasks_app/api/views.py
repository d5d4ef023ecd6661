"""Thin views: HTTP in, a service or selector call, HTTP out."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.http import HttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from tasks_app import selectors, services
from tasks_app.api import waiting
from tasks_app.api.json_tasks import is_json, post_json_task, submission_content
from tasks_app.api.pagination import (
    DEFAULT_RUNS_LIMIT,
    MAX_RUNS_LIMIT,
    paginate,
    runs_links,
    runs_page,
)
from tasks_app.api.parsers import BoundedJSONParser, OctetStreamRenderer
from tasks_app.api.replies import answer, idempotency_key
from tasks_app.api.serializers import (
    ErrorSerializer,
    TaskDetailDocSerializer,
    TaskSerializer,
    TaskSubmissionSerializer,
    TaskSummarySerializer,
    task_detail,
    task_summaries,
    task_summary,
    task_with_counts,
)
from tasks_app.api.submission import read_submission, submit
from tasks_app.exceptions import ModuleTooLarge
from tasks_app.idempotency import Answer

_ERROR = OpenApiResponse(ErrorSerializer, description="JSON naming the field and the problem")


class TaskListView(APIView):
    """`GET /tasks`: every task (a JSON array, paginated by Link header).
    `POST /tasks`: submit a task with the seed's multipart form."""

    parser_classes = [MultiPartParser, FormParser, BoundedJSONParser]

    @extend_schema(
        operation_id="tasks_list",
        summary="List tasks",
        description="A JSON array (the seed's shape), oldest first. Pages are chosen with "
        "`limit` and `offset`; the next and previous pages are in the `Link` header.",
        parameters=[
            OpenApiParameter("limit", OpenApiTypes.INT, description="page size, 1-1000 (100)"),
            OpenApiParameter("offset", OpenApiTypes.INT, description="tasks to skip (0)"),
            OpenApiParameter(
                "Link",
                OpenApiTypes.STR,
                location=OpenApiParameter.HEADER,
                response=[200],
                description='RFC 8288 links: rel="next" and rel="prev"',
            ),
            OpenApiParameter(
                "X-Total-Count",
                OpenApiTypes.INT,
                location=OpenApiParameter.HEADER,
                response=[200],
                description="how many tasks there are in all",
            ),
        ],
        responses={200: TaskSerializer(many=True), 400: _ERROR},
    )
    def get(self, request: Request) -> Response:
        page = paginate(selectors.tasks_oldest_first(), request)
        return Response(task_summaries(selectors.with_progress(page.items)), headers=page.headers)

    @extend_schema(
        operation_id="tasks_create",
        summary="Submit a task",
        description="The seed's multipart form. Run k (k = 0 … max(repeats,1)-1) is due at "
        "receipt + start + k·delay seconds. The module must be WebAssembly exporting "
        "`run(input, difficulty)` or a WASI command (`_start`).",
        request={"multipart/form-data": TaskSubmissionSerializer},
        responses={
            201: TaskSerializer,
            400: _ERROR,
            409: OpenApiResponse(ErrorSerializer, description="a task with this id exists"),
            413: OpenApiResponse(ErrorSerializer, description="the module is over the limit"),
        },
    )
    def post(self, request: Request) -> Response:
        if is_json(request):
            return post_json_task(request)
        _refuse_oversized(request)
        submission = read_submission(request)
        if idempotency_key(request) is None:
            task = submit(submission)
            # The task as the listing shows it (nothing has run yet); its runs
            # are at the Location.
            body = task_summary(selectors.as_new(task))
            return Response(body, status=201, headers={"Location": f"/tasks/{task.pk}"})

        def write() -> Answer:
            task = services.submit_task_on_commit(**submission.fields())
            return Answer(201, task_summary(selectors.as_new(task)))

        return answer(
            request, content=lambda: submission_content(submission), write=write, location=_where
        )


class TaskDetailView(APIView):
    """`GET /tasks/<id>`: one task, its runs counted by state, and a page of
    its runs with each run's state, worker, timings and result.
    `DELETE /tasks/<id>`: cancel it (runs not started end `cancelled`,
    running ones are interrupted) and answer its summary; the task stays
    inspectable."""

    @extend_schema(
        operation_id="tasks_retrieve",
        summary="One task with a page of its runs",
        description="The task as `GET /tasks` lists it, `runs_by_state` (its runs counted "
        "by state), and one page of its runs in index order with their attempts: the answer "
        "is the same size whatever the task's size. Pages are chosen with `runs_limit` and "
        "`runs_offset`; the next and previous pages are in the `Link` header.",
        parameters=[
            OpenApiParameter(
                "runs_limit",
                OpenApiTypes.INT,
                description=f"runs on the page, 1-{MAX_RUNS_LIMIT} ({DEFAULT_RUNS_LIMIT})",
            ),
            OpenApiParameter(
                "runs_offset",
                OpenApiTypes.INT,
                description="index of the first run on the page, 0 or more (0)",
            ),
            OpenApiParameter(
                "wait",
                OpenApiTypes.NUMBER,
                description="seconds, over 0 and at most 60: answer as soon as every run of "
                "the task is final, or after this long with the task as it is then. When "
                "WW_WAIT_MAX_WAITERS requests wait already: 503 with Retry-After",
            ),
            OpenApiParameter(
                "Link",
                OpenApiTypes.STR,
                location=OpenApiParameter.HEADER,
                response=[200],
                description='RFC 8288 links to the neighbouring pages of runs: rel="next" '
                'and rel="prev" (absent on a task\'s only page)',
            ),
        ],
        responses={200: TaskDetailDocSerializer, 400: _ERROR, 404: _ERROR, 503: _ERROR},
    )
    def get(self, request: Request, task_id: str) -> Response:
        page = runs_page(request)
        if waiting.wait_seconds(request) is not None:
            waiting.refuse_if_full(request)
        task = selectors.task_detail(task_id, runs_limit=page.limit, runs_offset=page.offset)
        body = task_detail(task, runs_limit=page.limit, runs_offset=page.offset)
        body["waiting_for"] = selectors.waiting_for(task)
        waiting.report(request, task.runs_by_state)  # type: ignore[attr-defined]  # set by selectors.task_detail
        return Response(body, headers=runs_links(request, page, task.run_count))

    @extend_schema(
        operation_id="tasks_cancel",
        summary="Cancel a task",
        description="Runs not started end `cancelled`; running ones are interrupted. "
        "The task and its history stay. Answers the task's summary with its runs counted "
        "by state (`runs_by_state`), not the runs: `GET /tasks/<id>` pages through them.",
        responses={200: TaskSummarySerializer, 404: _ERROR},
    )
    def delete(self, request: Request, task_id: str) -> Response:
        services.cancel_task(task_id=task_id)
        return Response(task_with_counts(selectors.task_summary(task_id)))


class RunOutputView(APIView):
    """`GET /tasks/<id>/runs/<index>/output`: the run's output, raw."""

    renderer_classes = [JSONRenderer, OctetStreamRenderer]

    @extend_schema(
        operation_id="tasks_run_output",
        summary="A run's raw output",
        description="The run's output bytes as the module wrote them (a text result as "
        "UTF-8; empty while the run has none). Cut to WW_RESULT_MAX_BYTES as the run's "
        "`result_truncated` says.",
        responses={
            (200, "application/octet-stream"): OpenApiTypes.BINARY,
            404: _ERROR,
        },
    )
    def get(self, request: Request, task_id: str, index: int) -> HttpResponse:
        output = selectors.run_output(task_id, int(index))
        return HttpResponse(output, content_type="application/octet-stream")


def _where(body: Any) -> str:
    return f"/tasks/{body['id']}"


def _refuse_oversized(request: Request) -> None:
    """413 from the declared length, before the body is parsed."""
    try:
        declared = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return
    if declared > settings.WW_TASKS.request_body_max_bytes:
        raise ModuleTooLarge(settings.WW_TASKS.module_max_bytes)
