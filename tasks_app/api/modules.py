"""The module registry: `POST /modules` (the module as the multipart field
`wasm`, or the raw body as `application/wasm`), checked and stored as a
task's module is; `GET /modules` (an array, paginated like /tasks) and
`GET /modules/<sha256>`."""

from __future__ import annotations

import re

from django.conf import settings
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.parsers import MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from tasks_app import selectors, services
from tasks_app.api.pagination import paginate
from tasks_app.api.parsers import WasmParser, read_bounded
from tasks_app.api.serializers import ErrorSerializer
from tasks_app.exceptions import InvalidField, ModuleTooLarge
from tasks_app.models import Module

_ERROR = OpenApiResponse(ErrorSerializer, description="JSON naming the field and the problem")
_SHA256 = re.compile(r"[0-9a-f]{64}")


class ModuleSerializer(serializers.ModelSerializer):
    """A stored module (its bytes are not shown)."""

    class Meta:
        model = Module
        fields = ["sha256", "kind", "size", "exports", "created_at"]
        extra_kwargs = {"exports": {"help_text": "the names the module exports"}}


class ModuleUploadSerializer(serializers.Serializer):
    wasm = serializers.FileField(help_text="the module, as a file upload")


_shape = ModuleSerializer()


class ModuleListView(APIView):
    """`GET /modules`: stored modules, oldest first. `POST /modules`: store one."""

    parser_classes = [WasmParser, MultiPartParser]

    @property
    def body_max_bytes(self) -> int:
        return settings.WW_TASKS.module_max_bytes

    @extend_schema(
        operation_id="modules_list",
        summary="List stored modules",
        description="A JSON array, oldest first, paginated as `GET /tasks` is (`limit`, "
        "`offset`, `Link` and `X-Total-Count` headers).",
        parameters=[
            OpenApiParameter("limit", OpenApiTypes.INT, description="page size, 1-1000 (100)"),
            OpenApiParameter("offset", OpenApiTypes.INT, description="modules to skip (0)"),
        ],
        responses={200: ModuleSerializer(many=True), 400: _ERROR},
    )
    def get(self, request: Request) -> Response:
        page = paginate(selectors.modules_oldest_first(), request)
        return Response([_shape.to_representation(m) for m in page.items], headers=page.headers)

    @extend_schema(
        operation_id="modules_create",
        summary="Store a module",
        description="The module as the multipart field `wasm`, or as the whole body with "
        "`Content-Type: application/wasm`; checked as a task's module is. 201 when these "
        "bytes are new, 200 (the same object) when they were stored before. Tasks then name "
        "it by `sha256` (`module`).",
        request={
            "application/wasm": OpenApiTypes.BINARY,
            "multipart/form-data": ModuleUploadSerializer,
        },
        responses={
            200: ModuleSerializer,
            201: ModuleSerializer,
            400: _ERROR,
            413: OpenApiResponse(ErrorSerializer, description="the module is over the limit"),
        },
    )
    def post(self, request: Request) -> Response:
        module, created = services.upload_module(wasm=_module_bytes(request))
        body = _shape.to_representation(selectors.module(module.pk))
        return Response(
            body, status=201 if created else 200, headers={"Location": f"/modules/{module.pk}"}
        )


class ModuleDetailView(APIView):
    """`GET /modules/<sha256>`: one stored module."""

    @extend_schema(
        operation_id="modules_retrieve",
        summary="One stored module",
        responses={200: ModuleSerializer, 400: _ERROR, 404: _ERROR},
    )
    def get(self, request: Request, sha256: str) -> Response:
        if _SHA256.fullmatch(sha256) is None:
            raise InvalidField("sha256", "must be 64 lowercase hex digits")
        return Response(_shape.to_representation(selectors.module(sha256)))


def _module_bytes(request: Request) -> bytes:
    limit = settings.WW_TASKS.module_max_bytes
    try:
        declared = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        declared = 0
    if declared > settings.WW_TASKS.request_body_max_bytes:
        raise ModuleTooLarge(limit)
    data = request.data
    wasm = data.get("wasm") if hasattr(data, "get") else None
    if isinstance(wasm, bytes):
        if len(wasm) > limit:
            raise ModuleTooLarge(limit)
        if not wasm:
            raise InvalidField("wasm", "the body is empty: send the module's bytes")
        return wasm
    if wasm is None or isinstance(wasm, str):
        raise InvalidField(
            "wasm",
            "send the module as the multipart file field wasm, or as the body with "
            "Content-Type: application/wasm",
        )
    if wasm.size > limit:
        raise ModuleTooLarge(limit)
    content = read_bounded(wasm, limit)
    if not content:
        raise InvalidField("wasm", "the file is empty")
    return content
