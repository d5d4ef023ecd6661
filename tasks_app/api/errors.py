"""Every error the API gives, mapped to its HTTP status in one place. The
body always names the field and the problem:
{"field": "...", "problem": "...", "detail": "field: problem", "errors": {...}}"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import RequestDataTooBig, SuspiciousOperation, TooManyFieldsSent
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from tasks_app.exceptions import (
    BodyTooLarge,
    IdempotencyConflict,
    InvalidBatchItem,
    InvalidField,
    ModuleNotFound,
    ModuleTooLarge,
    Overloaded,
    RunNotFound,
    TaskAlreadyExists,
    TaskNotFound,
)
from tasks_app.schedule_services import ScheduleExists, ScheduleNotFound


def error_response(
    field: str, problem: str, code: int, headers: dict[str, str] | None = None, **extra: Any
) -> Response:
    body = {"field": field, "problem": problem, "detail": f"{field}: {problem}", **extra}
    return Response(body, status=code, headers=headers)


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    if isinstance(exc, InvalidField):
        return error_response(exc.field, exc.problem, status.HTTP_400_BAD_REQUEST)
    if isinstance(exc, InvalidBatchItem):
        code = status.HTTP_409_CONFLICT if exc.conflict else status.HTTP_400_BAD_REQUEST
        return error_response(exc.field, exc.problem, code, index=exc.index)
    if isinstance(exc, TaskAlreadyExists):
        return error_response("id", str(exc), status.HTTP_409_CONFLICT)
    if isinstance(exc, IdempotencyConflict):
        return error_response("Idempotency-Key", str(exc), status.HTTP_409_CONFLICT)
    if isinstance(exc, ModuleTooLarge):
        return error_response("wasm", str(exc), status.HTTP_413_REQUEST_ENTITY_TOO_LARGE)
    if isinstance(exc, BodyTooLarge):
        return error_response("body", str(exc), status.HTTP_413_REQUEST_ENTITY_TOO_LARGE)
    if isinstance(exc, TaskNotFound):
        return error_response("id", str(exc), status.HTTP_404_NOT_FOUND)
    if isinstance(exc, ScheduleNotFound):
        return error_response("name", str(exc), status.HTTP_404_NOT_FOUND)
    if isinstance(exc, ScheduleExists):
        return error_response("name", str(exc), status.HTTP_409_CONFLICT)
    if isinstance(exc, ModuleNotFound):
        return error_response("sha256", str(exc), status.HTTP_404_NOT_FOUND)
    if isinstance(exc, RunNotFound):
        return error_response("index", str(exc), status.HTTP_404_NOT_FOUND)
    if isinstance(exc, Overloaded):
        return error_response(
            exc.field,
            exc.problem,
            status.HTTP_503_SERVICE_UNAVAILABLE,
            headers={"Retry-After": str(exc.retry_after)},
        )
    if isinstance(exc, RequestDataTooBig):
        return error_response("body", str(exc), status.HTTP_413_REQUEST_ENTITY_TOO_LARGE)
    if isinstance(exc, (TooManyFieldsSent, SuspiciousOperation)):
        return error_response("body", str(exc), status.HTTP_400_BAD_REQUEST)
    if isinstance(exc, exceptions.ValidationError):
        field, problem = _first_error(exc.detail)
        return error_response(field, problem, status.HTTP_400_BAD_REQUEST, errors=exc.detail)
    if isinstance(exc, exceptions.ParseError):
        return error_response("body", str(exc.detail), status.HTTP_400_BAD_REQUEST)
    response = drf_exception_handler(exc, context)
    if response is not None and isinstance(exc, exceptions.APIException):
        response.data = {
            "field": "request",
            "problem": str(exc.detail),
            "detail": f"request: {exc.detail}",
        }
    return response


def _first_error(detail: Any) -> tuple[str, str]:
    field, problem = first_error(detail)
    return field or "request", problem


def first_error(detail: Any) -> tuple[str, str]:
    """The first field and problem of a ValidationError's detail; a nested
    field as `env.NAME` or `args.3` ("" where no field is named)."""
    if isinstance(detail, dict) and detail:
        field, problems = next(iter(detail.items()))
        inner, problem = first_error(problems)
        return (f"{field}.{inner}" if inner else str(field)), problem
    if isinstance(detail, list) and detail:
        if all(not isinstance(item, list | dict) for item in detail):
            return "", str(detail[0])
        for position, item in enumerate(detail):
            if item:
                inner, problem = first_error(item)
                return (f"{position}.{inner}" if inner else str(position)), problem
    return "", str(detail)
