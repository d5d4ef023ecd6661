"""The seed's form (`POST /tasks`), read and validated.

A form sent the plain way (what curl, httpx, requests, browsers and Django's
test client send: each known field once as a simple part, the module as a
file part, the body at most DATA_UPLOAD_MAX_MEMORY_SIZE) is split straight
from the body and checked by plain functions, at a fraction of the cost of
DRF's multipart parser and serializer. Everything else goes DRF's way: any
other encoding, and every form with a missing or bad value, so the errors are
exactly TaskSubmissionSerializer's. The plain path accepts only forms that
TaskSubmissionSerializer accepts, with the same values: it converts numbers
with the serializer's own fields and holds them to their bounds, and declines
whatever it does not fully understand.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.http.request import RawPostDataException
from rest_framework import serializers
from rest_framework.fields import empty
from rest_framework.request import Request

from tasks_app import services
from tasks_app.api.serializers import TASK_ID_PATTERN, submission_fields, validate_submission
from tasks_app.exceptions import ModuleTooLarge
from tasks_app.loop_db import LoopDatabase
from tasks_app.models import Task


@dataclass(frozen=True, slots=True)
class Submission:
    """A task as submitted: the form's values, validated, and the module."""

    id: str
    description: str
    duration: float
    start: float
    delay: float
    repeats: int
    input: int
    difficulty: int
    retries: int
    wasm: bytes

    def fields(self) -> dict[str, Any]:
        """The task's fields, as the services take them."""
        return {
            "task_id": self.id,
            "description": self.description,
            "wasm": self.wasm,
            "duration": self.duration,
            "start": self.start,
            "delay": self.delay,
            "repeats": self.repeats,
            "input": self.input,
            "difficulty": self.difficulty,
            "retries": self.retries,
        }


def read_submission(request: Request) -> Submission:
    """The submitted task. A ValidationError names each bad field; a module
    over WW_MODULE_MAX_BYTES is ModuleTooLarge."""
    submission = _plain_submission(request)
    if submission is None:
        data = validate_submission(request.data)
        upload = data["wasm"]
        if upload.size > settings.WW_TASKS.module_max_bytes:
            raise ModuleTooLarge(settings.WW_TASKS.module_max_bytes)
        submission = _submission({**data, "wasm": upload.read()})
    elif len(submission.wasm) > settings.WW_TASKS.module_max_bytes:
        raise ModuleTooLarge(settings.WW_TASKS.module_max_bytes)
    return submission


def submit(submission: Submission) -> Task:
    """Store the task and hand its runs to the scheduler."""
    return services.submit_task(**submission.fields())


async def submit_here(loop_db: LoopDatabase, submission: Submission) -> Task:
    """`submit`, on the event loop's own connection (WriteElsewhere where
    it cannot be stored there)."""
    return await services.submit_task_here(loop_db, **submission.fields())


def _submission(values: dict[str, Any]) -> Submission:
    return Submission(
        id=values["id"],
        description=values["description"],
        duration=values["duration"],
        start=values["start"],
        delay=values["delay"],
        repeats=values["repeats"],
        input=values["input"],
        difficulty=values["difficulty"],
        retries=values["retries"],
        wasm=values["wasm"],
    )


# -- the plain path -----------------------------------------------------------

# Only a bare token boundary: what Django's header parsing reads back unchanged.
_MULTIPART = re.compile(r"multipart/form-data; ?boundary=([0-9A-Za-z_.-]{1,70})")
# Part headers as clients write them; a file name Django keeps as it is (no
# path, entity, quote or control character), so it keeps the part too.
_DISPOSITION = re.compile(
    rb'content-disposition: form-data; name="([a-z]{1,20})"'
    rb'(?:; filename="([^"\\/&;\x00-\x1f\x7f-\xff]{1,255})")?',
    re.IGNORECASE,
)
_CONTENT_TYPE = re.compile(rb"content-type: [\x20-\x7e]{0,200}", re.IGNORECASE)
_MAX_PART_HEAD = 1000  # Django looks for a part's headers in its first KiB

_FIELDS = submission_fields()
_TEXT_FIELDS = {name for name in _FIELDS if name != "wasm"}
# Each number is converted by its serializer field (DRF's rules for "1.0",
# " 5", "1e3", "nan"), then held to that field's bounds.
_NUMBERS = {
    name: field
    for name, field in _FIELDS.items()
    if isinstance(field, serializers.IntegerField | serializers.FloatField)
}
_TASK_ID = re.compile(TASK_ID_PATTERN)
_MAX_DESCRIPTION: int = _FIELDS["description"].max_length  # type: ignore[attr-defined]  # a CharField


def _plain_submission(request: Request) -> Submission | None:
    form = _plain_form(request)
    return None if form is None else _plain_values(*form)


def _plain_form(request: Request) -> tuple[dict[str, str], bytes] | None:
    """The form's text fields and its module, or None where DRF should parse it."""
    boundary = plain_boundary(
        request.META.get("CONTENT_TYPE", ""), request.META.get("CONTENT_LENGTH")
    )
    if boundary is None:
        return None
    try:
        body: bytes = request.body
    except RawPostDataException:  # read already (a session's CSRF check): DRF has it
        return None
    return _split(body, boundary)


def plain_boundary(content_type: str, content_length: str | None) -> bytes | None:
    """The multipart delimiter of a form sent the plain way, judged by its
    headers (a token boundary, a length within DATA_UPLOAD_MAX_MEMORY_SIZE),
    or None."""
    match = _MULTIPART.fullmatch(content_type)
    if match is None:
        return None
    try:
        length = int(content_length or 0)
    except ValueError:
        return None
    limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
    if length <= 0 or (limit is not None and length > limit):
        return None
    return b"--" + match[1].encode()


def plain_submission(body: bytes, boundary: bytes) -> Submission | None:
    """The submission in a plain form's body, if every value in it is
    plainly valid (and its module within WW_MODULE_MAX_BYTES), else None:
    DRF's way then reads it, and answers whatever is wrong."""
    form = _split(body, boundary)
    if form is None:
        return None
    submission = _plain_values(*form)
    if submission is None or len(submission.wasm) > settings.WW_TASKS.module_max_bytes:
        return None
    return submission


def _split(body: bytes, delimiter: bytes) -> tuple[dict[str, str], bytes] | None:
    # Django's parser splits at every delimiter as this does, drops the CRLF
    # before one and skips the CRLF after one as an empty header line.
    pieces = body.split(delimiter)
    if len(pieces) < 3 or pieces[0] or pieces[-1] not in (b"--", b"--\r\n"):
        return None
    fields: dict[str, str] = {}
    wasm: bytes | None = None
    for piece in pieces[1:-1]:
        if not (piece.startswith(b"\r\n") and piece.endswith(b"\r\n")):
            return None
        head, found, content = piece[2:-2].partition(b"\r\n\r\n")
        if not found or not head or len(head) > _MAX_PART_HEAD:
            return None
        part = _part(head)
        if part is None:
            return None
        name, is_file = part
        if is_file and name == "wasm" and wasm is None:
            wasm = content
        elif not is_file and name in _TEXT_FIELDS and name not in fields:
            try:
                fields[name] = content.decode()
            except UnicodeDecodeError:  # Django would replace the bad bytes
                return None
        else:
            return None
    return None if wasm is None else (fields, wasm)


def _part(head: bytes) -> tuple[str, bool] | None:
    """A part's field name and whether it is a file, from its headers."""
    disposition = None
    content_type = False
    for line in head.split(b"\r\n"):
        match = _DISPOSITION.fullmatch(line)
        if match is not None and disposition is None:
            disposition = match
        elif not content_type and _CONTENT_TYPE.fullmatch(line):
            content_type = True
        else:
            return None
    if disposition is None or disposition[2] in (b".", b".."):  # Django drops the part
        return None
    return disposition[1].decode(), disposition[2] is not None


def _plain_values(fields: dict[str, str], wasm: bytes) -> Submission | None:
    """The submission if every value is plainly valid, else None."""
    task_id = fields.get("id", "").strip()  # DRF trims it before matching
    description = fields.get("description", "")
    if (
        not wasm
        or _TASK_ID.fullmatch(task_id) is None
        or len(description) > _MAX_DESCRIPTION
        or "\x00" in description
    ):
        return None
    values: dict[str, Any] = {"id": task_id, "description": description, "wasm": wasm}
    for name, field in _NUMBERS.items():
        raw = fields.get(name, "")
        if raw == "":  # DRF counts an empty form value as absent
            if field.default is not empty:
                values[name] = field.default
            continue
        try:
            value = field.to_internal_value(raw)
        except serializers.ValidationError:
            return None
        if (field.min_value is not None and value < field.min_value) or (
            field.max_value is not None and value > field.max_value
        ):
            return None
        values[name] = value
    return _submission(values)
