"""Thin views: HTTP in, a service or selector call, HTTP out."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from rest_framework.parsers import FormParser, JSONParser, MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from tasks_app import notify, selectors, services
from tasks_app.api.pagination import paginate
from tasks_app.api.serializers import (
    TaskDetailSerializer,
    TaskSerializer,
    TaskSubmissionSerializer,
)
from tasks_app.exceptions import ModuleTooLarge


class TaskListView(APIView):
    """`GET /tasks`: every task (a JSON array, paginated by Link header).
    `POST /tasks`: submit a task with the seed's multipart form."""

    parser_classes = [MultiPartParser, FormParser, JSONParser]

    def get(self, request: Request) -> Response:
        page = paginate(selectors.task_list(), request)
        return Response(TaskSerializer(page.items, many=True).data, headers=page.headers)

    def post(self, request: Request) -> Response:
        _refuse_oversized(request)
        form = TaskSubmissionSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        data: dict[str, Any] = form.validated_data
        upload = data["wasm"]
        if upload.size > settings.WW_MODULE_MAX_BYTES:
            raise ModuleTooLarge(settings.WW_MODULE_MAX_BYTES)
        task = services.create_task(
            task_id=data["id"],
            description=data["description"],
            wasm=upload.read(),
            duration=data["duration"],
            start=data["start"],
            delay=data["delay"],
            repeats=data["repeats"],
            input=data["input"],
            difficulty=data["difficulty"],
        )
        notify.task_submitted(task.pk)
        body = TaskDetailSerializer(selectors.task_detail(task.pk)).data
        return Response(body, status=201, headers={"Location": f"/tasks/{task.pk}"})


class TaskDetailView(APIView):
    """`GET /tasks/<id>`: one task with each run's state, worker, timings
    and result."""

    def get(self, request: Request, task_id: str) -> Response:
        return Response(TaskDetailSerializer(selectors.task_detail(task_id)).data)


def _refuse_oversized(request: Request) -> None:
    """413 from the declared length, before the body is parsed."""
    try:
        declared = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return
    if declared > settings.WW_MODULE_MAX_BYTES + 1024 * 1024:
        raise ModuleTooLarge(settings.WW_MODULE_MAX_BYTES)
