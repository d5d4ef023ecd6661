"""`Idempotency-Key` on the POSTs that store tasks: the same key with the
same body answers what the first request answered and stores nothing new;
with another body, IdempotencyConflict (409).

The key's row is inserted first in the write's own transaction, so of two
requests racing with one key the second waits on (or fails at) the unique
key, and then answers from the first's row: a task is never stored twice.
Only a write that succeeded is remembered (an error rolls the row back with
everything else: sending the request again tries again). Keys are kept at
least WW_IDEMPOTENCY_HOURS; each new key purges a bounded number of
older ones, and at WW_IDEMPOTENCY_MAX_KEYS kept a new key is refused
(Overloaded: 503 with Retry-After), so the table stays bounded."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from tasks_app.exceptions import IdempotencyConflict, InvalidField, Overloaded
from tasks_app.models import IdempotencyKey

HEADER = "Idempotency-Key"
PURGE_ROWS = 500  # old keys deleted per new key, at most
_KEY_LENGTH = IdempotencyKey._meta.get_field("key").max_length or 255


@dataclass(frozen=True)
class Answer:
    """What a POST answered: its status and JSON body."""

    status: int
    body: Any
    replayed: bool = False


def valid_key(raw: str) -> str:
    """The header's value, or InvalidField naming Idempotency-Key."""
    if not raw or len(raw) > _KEY_LENGTH or not raw.isascii() or not raw.isprintable():
        raise InvalidField(
            HEADER, f"must be 1-{_KEY_LENGTH} printable ASCII characters (e.g. a UUID)"
        )
    return raw


def digest(content: Any) -> str:
    """The SHA-256 of a request's content in a canonical form (JSON with
    sorted keys): the same request sent again, by a client that orders
    fields or picks multipart boundaries otherwise, is the same body."""
    text = json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


def answered(*, key: str, path: str, body_sha256: str, write: Callable[[], Answer]) -> Answer:
    """`write()`'s answer, remembered under (key, path) in its own
    transaction; or the remembered answer of the first request with this
    key (IdempotencyConflict if its body was another)."""
    earlier = _remembered(key, path, body_sha256)
    if earlier is not None:
        return earlier
    try:
        with transaction.atomic():
            now = timezone.now()
            _make_room(key, path, now)
            row = IdempotencyKey.objects.create(
                key=key, path=path, body_sha256=body_sha256, status=0, response={}, created_at=now
            )
            answer = write()
            row.status, row.response = answer.status, answer.body
            row.save(update_fields=["status", "response"])
            return answer
    except IntegrityError:
        # Another request with this key got there first (this one stored
        # nothing: its transaction is gone): answer as it did.
        earlier = _remembered(key, path, body_sha256)
        if earlier is None:
            raise
        return earlier


def _cutoff(now: datetime) -> datetime:
    return now - timedelta(hours=settings.WW_TASKS.idempotency_hours)


def _remembered(key: str, path: str, body_sha256: str) -> Answer | None:
    row = (
        IdempotencyKey.objects.filter(key=key, path=path, created_at__gte=_cutoff(timezone.now()))
        .only("body_sha256", "status", "response")
        .first()
    )
    if row is None or row.status == 0:
        return None
    if row.body_sha256 != body_sha256:
        raise IdempotencyConflict(key)
    return Answer(status=row.status, body=row.response, replayed=True)


def _make_room(key: str, path: str, now: datetime) -> None:
    """Purge up to PURGE_ROWS expired keys (this one's first, if expired),
    then refuse a new key when WW_IDEMPOTENCY_MAX_KEYS are kept."""
    cutoff = _cutoff(now)
    IdempotencyKey.objects.filter(key=key, path=path, created_at__lt=cutoff).delete()
    expired = list(
        IdempotencyKey.objects.filter(created_at__lt=cutoff)
        .order_by("created_at")
        .values_list("pk", flat=True)[:PURGE_ROWS]
    )
    if expired:
        IdempotencyKey.objects.filter(pk__in=expired).delete()
    most = settings.WW_TASKS.idempotency_max_keys
    if IdempotencyKey.objects.count() >= most:
        raise Overloaded(
            HEADER,
            f"{most} idempotency keys are kept (WW_IDEMPOTENCY_MAX_KEYS) until the oldest "
            "expire; send the request again later, or without the header",
            retry_after=60,
        )
