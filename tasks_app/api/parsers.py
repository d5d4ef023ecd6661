"""Request bodies other than the seed's form: JSON read within a bound and
refused whole when it is not plain JSON (NaN, nesting past the parser's
depth), and a module's raw bytes (`application/wasm`)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import IO, Any

from django.conf import settings
from rest_framework import parsers, renderers
from rest_framework.exceptions import ParseError

from tasks_app.exceptions import BodyTooLarge, ModuleTooLarge


def body_limit(parser_context: Mapping[str, Any] | None) -> int:
    """The view's bound on its body (`body_max_bytes`), else the request's."""
    view = (parser_context or {}).get("view")
    limit = getattr(view, "body_max_bytes", None)
    return int(limit) if limit is not None else settings.WW_TASKS.request_body_max_bytes


def read_bounded(stream: IO[bytes] | None, limit: int) -> bytes:
    """The body, or BodyTooLarge once it passes `limit` (a chunked body
    declares no length: it is read only that far)."""
    if stream is None:
        return b""
    body = stream.read(limit + 1)
    if len(body) > limit:
        raise BodyTooLarge(limit)
    return body


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


class BoundedJSONParser(parsers.BaseParser):
    """A JSON parser reading at most the view's bound (not DRF's
    JSONParser: DRF reads a JSONParser's body whole through request.body,
    bounded by DATA_UPLOAD_MAX_MEMORY_SIZE, 1 MiB), refusing NaN and
    Infinity, and answering a 400 (not a 500) for JSON nested past what
    Python's parser follows."""

    media_type = "application/json"
    renderer_class = renderers.JSONRenderer

    def parse(
        self,
        stream: IO[bytes] | None,
        media_type: str | None = None,
        parser_context: Mapping[str, Any] | None = None,
    ) -> Any:
        body = read_bounded(stream, body_limit(parser_context))
        try:
            return json.loads(body.decode("utf-8"), parse_constant=_no_constant)
        except UnicodeDecodeError:
            raise ParseError("JSON parse error - the body is not UTF-8") from None
        except RecursionError:
            raise ParseError("JSON parse error - nested too deeply") from None
        except ValueError as exc:
            raise ParseError(f"JSON parse error - {exc}") from None


class WasmParser(parsers.BaseParser):
    """A module's bytes as the whole body (`Content-Type: application/wasm`)."""

    media_type = "application/wasm"

    def parse(
        self,
        stream: IO[bytes] | None,
        media_type: str | None = None,
        parser_context: Mapping[str, Any] | None = None,
    ) -> Any:
        limit = body_limit(parser_context)
        try:
            return {"wasm": read_bounded(stream, limit)}
        except BodyTooLarge:
            raise ModuleTooLarge(limit) from None


class OctetStreamRenderer(renderers.BaseRenderer):
    """Raw bytes (`application/octet-stream`); an error body as JSON bytes."""

    media_type = "application/octet-stream"
    format = "bin"
    charset = None

    def render(
        self,
        data: Any,
        accepted_media_type: str | None = None,
        renderer_context: Mapping[str, Any] | None = None,
    ) -> bytes:
        if isinstance(data, bytes):
            return data
        return json.dumps(data).encode()
