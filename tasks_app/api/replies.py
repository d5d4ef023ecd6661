"""The answers of the POSTs that store tasks, made idempotent when asked:
with an `Idempotency-Key` header the write and the key's row are one
transaction (tasks_app.idempotency), and a repeat answers the first's
status and body (with `Idempotent-Replayed: true`)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from rest_framework.request import Request
from rest_framework.response import Response

from tasks_app import idempotency
from tasks_app.idempotency import Answer

REPLAYED = "Idempotent-Replayed"


def idempotency_key(request: Request) -> str | None:
    """The request's Idempotency-Key (a 400 naming it when malformed)."""
    raw = request.headers.get(idempotency.HEADER)
    return None if raw is None else idempotency.valid_key(raw)


def answer(
    request: Request,
    *,
    content: Callable[[], Any],
    write: Callable[[], Answer],
    location: Callable[[Any], str | None] = lambda body: None,
) -> Response:
    """`write()`'s answer; under an Idempotency-Key, remembered (or the
    first answer replayed). `content` gives what identifies the request's
    body (hashed only when a key is sent)."""
    key = idempotency_key(request)
    if key is None:
        result = write()
    else:
        result = idempotency.answered(
            key=key,
            path=request.path.rstrip("/"),
            body_sha256=idempotency.digest(content()),
            write=write,
        )
    headers = {}
    where = location(result.body) if 200 <= result.status < 300 else None
    if where is not None:
        headers["Location"] = where
    if result.replayed:
        headers[REPLAYED] = "true"
    return Response(result.body, status=result.status, headers=headers)
