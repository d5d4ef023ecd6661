"""The plain path of `POST /tasks` (tasks_app/api/submission.py): forms as
clients send them are read straight from the body, everything else goes
through DRF's parser and TaskSubmissionSerializer. The plain path accepts
only what the serializer accepts, with the same values, and the API answers
every request, good or bad, as it does through DRF alone."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import asdict
from typing import Any

import httpx
import pytest
from django.contrib.auth.models import User
from django.core.files.uploadedfile import SimpleUploadedFile
from django.http import HttpRequest
from django.test import Client, RequestFactory
from hypothesis import given
from hypothesis import strategies as st
from rest_framework.authtoken.models import Token
from rest_framework.parsers import FormParser, JSONParser, MultiPartParser
from rest_framework.request import Request

from tasks_app.api import permissions, submission
from tasks_app.api.serializers import TASK_ID_PATTERN, validate_submission
from tasks_app.api.submission import Submission
from tasks_app.models import Module, Task
from tests.api.forms import HASH_WASM
from tests.e2e.cluster import seed_form

SEED = seed_form()


def client_body(boundary: str, file_head: str) -> bytes:
    """The seed's form as curl (7.88) and browsers write it, the module in
    the seed's place among the fields with `file_head` after its disposition."""

    def field(name: str) -> bytes:
        head = f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n'
        return f"{head}{SEED[name]}\r\n".encode()

    module = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="wasm"; filename="hash.wasm"'
        f"\r\n{file_head}\r\n\r\n".encode()
        + HASH_WASM
        + b"\r\n"
    )
    before = ("id", "description", "complete", "duration", "start", "delay", "repeats")
    end = f"--{boundary}--\r\n".encode()
    return b"".join([*map(field, before), module, field("input"), field("difficulty"), end])


CURL_BOUNDARY = "------------------------4bf6d24b68a43cd2"
BROWSER_BOUNDARY = "----WebKitFormBoundary7MA4YWxkTrZu0gW"


def drf(request: HttpRequest) -> Request:
    return Request(request, parsers=[MultiPartParser(), FormParser(), JSONParser()])


def form_request(fields: dict[str, str], wasm: bytes | None) -> HttpRequest:
    """A POST as Django's test client encodes a form."""
    data: dict[str, Any] = dict(fields)
    if wasm is not None:
        data["wasm"] = SimpleUploadedFile("hash.wasm", wasm)
    return RequestFactory().post("/tasks", data)


def raw_request(body: bytes, content_type: str) -> HttpRequest:
    return RequestFactory().generic("POST", "/tasks", body, content_type=content_type)


def serializer_values(request: HttpRequest) -> dict[str, Any]:
    """What TaskSubmissionSerializer makes of the request (`complete` is dropped)."""
    data = dict(validate_submission(drf(request).data))
    data.pop("complete", None)
    data["wasm"] = data["wasm"].read()
    return data


def plain_values(request: HttpRequest) -> dict[str, Any] | None:
    found = submission._plain_submission(drf(request))
    return None if found is None else asdict(found)


def typed(values: dict[str, Any]) -> dict[str, tuple[type, Any]]:
    """Values with their types: 0 and 0.0 are equal, and must not pass for each other."""
    return {name: (type(value), value) for name, value in values.items()}


# -- what the plain path accepts ---------------------------------------------------


def httpx_body(fields: dict[str, str], wasm: bytes) -> tuple[bytes, str]:
    request = httpx.Request(
        "POST", "http://x/tasks", data=fields, files={"wasm": ("hash.wasm", wasm)}
    )
    return request.read(), request.headers["Content-Type"]


@pytest.mark.parametrize(
    "make",
    [
        lambda: form_request(SEED, HASH_WASM),
        lambda: raw_request(*httpx_body(SEED, HASH_WASM)),
        lambda: raw_request(
            client_body(CURL_BOUNDARY, "Content-Type: application/octet-stream"),
            f"multipart/form-data; boundary={CURL_BOUNDARY}",
        ),
        lambda: raw_request(
            client_body(BROWSER_BOUNDARY, "Content-Type: application/wasm"),
            f"multipart/form-data; boundary={BROWSER_BOUNDARY}",
        ),
    ],
    ids=["django-test-client", "httpx", "curl", "browser"],
)
def test_clients_forms_take_the_plain_path_with_the_serializers_values(
    make: Callable[[], HttpRequest],
) -> None:
    plain = plain_values(make())
    assert plain is not None
    assert typed(plain) == typed(serializer_values(make()))
    assert plain["id"] == "task1" and plain["repeats"] == 3 and plain["wasm"] == HASH_WASM


NUMBERS = st.one_of(
    st.sampled_from(
        [
            "0",
            "1",
            "-1",
            "-0",
            "1.0",
            "1.000 ",
            "1.5",
            " 5 ",
            "\t2\n",
            "+7",
            "1_000",
            "1e3",
            "0x10",
            "nan",
            "inf",
            "-inf",
            "1e400",
            "٣",
            "",
            "x",
            "10",
            "11",
            "86400",
            "86400.5",
            "100000",
            "100001",
            str(2**63 - 1),
            str(2**63),
            str(-(2**63)),
            str(-(2**63) - 1),
            "9" * 1001,
        ]
    ),
    st.integers(min_value=0, max_value=10).map(str),
    st.integers().map(str),
    st.floats().map(repr),
    st.text(max_size=6),
)
IDS = st.one_of(
    st.sampled_from(
        ["task1", " task1 ", "a.b_c:d@e+f-g", "-a", "a/b", "a b", "", "  ", "x" * 200, "x" * 201]
    ),
    st.from_regex(TASK_ID_PATTERN, fullmatch=True),
    st.text(max_size=12),
)
DESCRIPTIONS = st.one_of(
    st.text(max_size=30), st.sampled_from(["", "x" * 10_000, "x" * 10_001, "a\x00b", " pad "])
)
FIELDS = {
    "id": IDS,
    "description": DESCRIPTIONS,
    **{
        name: NUMBERS
        for name in (
            "complete",
            "duration",
            "start",
            "delay",
            "repeats",
            "input",
            "difficulty",
            "retries",
        )
    },
}


@st.composite
def forms(draw: st.DrawFn) -> dict[str, str]:
    present = draw(st.sets(st.sampled_from(sorted(FIELDS))))
    return {name: draw(FIELDS[name]) for name in sorted(present | {"id"})}


@given(
    fields=forms(),
    wasm=st.sampled_from([HASH_WASM, b"\x00asm", b"", None]),
    encoder=st.sampled_from(["django", "httpx"]),
)
def test_the_plain_path_accepts_only_what_the_serializer_accepts_with_the_same_values(
    fields: dict[str, str], wasm: bytes | None, encoder: str
) -> None:
    def make() -> HttpRequest:
        if encoder == "httpx" and wasm is not None:
            return raw_request(*httpx_body(fields, wasm))
        return form_request(fields, wasm)

    plain = plain_values(make())
    if plain is not None:
        assert typed(plain) == typed(serializer_values(make()))


# -- what it leaves to DRF -------------------------------------------------------------

BOUNDARY = "b0undary"
CONTENT_TYPE = f"multipart/form-data; boundary={BOUNDARY}"


def part(name: str, value: bytes, *, head: bytes | None = None) -> bytes:
    head = head or f'Content-Disposition: form-data; name="{name}"'.encode()
    return b"--" + BOUNDARY.encode() + b"\r\n" + head + b"\r\n\r\n" + value + b"\r\n"


def wasm_part(filename: bytes = b"hash.wasm", value: bytes = HASH_WASM) -> bytes:
    return part(
        "wasm",
        value,
        head=b'Content-Disposition: form-data; name="wasm"; filename="' + filename + b'"',
    )


def body(*parts: bytes, end: bytes = b"--" + BOUNDARY.encode() + b"--\r\n") -> bytes:
    return b"".join(parts) + end


def seed_parts(**overrides: bytes) -> list[bytes]:
    values = {name: value.encode() for name, value in SEED.items()} | overrides
    return [part(name, value) for name, value in values.items()]


ODD_BODIES: dict[str, tuple[bytes, str]] = {
    "a field twice": (body(*seed_parts(), part("repeats", b"5"), wasm_part()), CONTENT_TYPE),
    "a second module": (body(*seed_parts(), wasm_part(), wasm_part()), CONTENT_TYPE),
    "an unknown field": (body(*seed_parts(), part("colour", b"red"), wasm_part()), CONTENT_TYPE),
    "the module as text": (body(*seed_parts(), part("wasm", b"abc")), CONTENT_TYPE),
    "a field as a file": (
        body(*seed_parts(), wasm_part(), wasm_part().replace(b'"wasm"', b'"input"', 1)),
        CONTENT_TYPE,
    ),
    "no module": (body(*seed_parts()), CONTENT_TYPE),
    "an empty module": (body(*seed_parts(), wasm_part(value=b"")), CONTENT_TYPE),
    "a module named '.'": (body(*seed_parts(), wasm_part(b".")), CONTENT_TYPE),
    "a module with a path": (body(*seed_parts(), wasm_part(b"dir/hash.wasm")), CONTENT_TYPE),
    "a module named in RFC 2231": (
        body(
            *seed_parts(),
            part(
                "wasm",
                HASH_WASM,
                head=b"Content-Disposition: form-data; name=\"wasm\"; filename*=UTF-8''h.wasm",
            ),
        ),
        CONTENT_TYPE,
    ),
    "a base64 part": (
        body(
            *seed_parts(),
            part(
                "input",
                b"MQ==",
                head=b'Content-Disposition: form-data; name="input"\r\n'
                b"Content-Transfer-Encoding: base64",
            ),
            wasm_part(),
        ),
        CONTENT_TYPE,
    ),
    "an unquoted name": (
        body(*seed_parts(), part("x", b"7", head=b"Content-Disposition: form-data; name=start")),
        CONTENT_TYPE,
    ),
    "Latin-1 in a value": (
        body(*seed_parts(description=b"caf\xe9"), wasm_part()),
        CONTENT_TYPE,
    ),
    "a preamble": (b"hello\r\n" + body(*seed_parts(), wasm_part()), CONTENT_TYPE),
    "no closing delimiter": (body(*seed_parts(), wasm_part(), end=b""), CONTENT_TYPE),
    "LF line ends": (
        body(*seed_parts(), wasm_part()).replace(b"\r\n", b"\n"),
        CONTENT_TYPE,
    ),
    "a quoted boundary": (
        body(*seed_parts(), wasm_part()),
        f'multipart/form-data; boundary="{BOUNDARY}"',
    ),
    "a charset": (
        body(*seed_parts(), wasm_part()),
        f"multipart/form-data; charset=utf-8; boundary={BOUNDARY}",
    ),
    "a url-encoded form": (b"id=x&repeats=1", "application/x-www-form-urlencoded"),
    "JSON": (b'{"id": "x"}', "application/json"),
}


@pytest.mark.parametrize(("raw", "content_type"), ODD_BODIES.values(), ids=list(ODD_BODIES))
def test_odd_encodings_are_left_to_drf(raw: bytes, content_type: str) -> None:
    assert plain_values(raw_request(raw, content_type)) is None


# -- the API answers the same either way ----------------------------------------------


def answer(response: Any) -> tuple[int, Any, dict[str, str | None]]:
    """Status, JSON body (less the times of receipt) and the headers that tell."""
    try:
        content = response.json()
    except ValueError:
        content = response.content
    if isinstance(content, dict):
        content = {k: v for k, v in content.items() if k not in ("received_at", "next_due_at")}
    names = ("Location", "Content-Type", "WWW-Authenticate", "Allow", "Vary")
    return response.status_code, content, {name: response.headers.get(name) for name in names}


def both_ways(monkeypatch: pytest.MonkeyPatch, send: Callable[[], Any]) -> tuple[Any, Any]:
    """The answer with the plain path, then (the database as it was) through DRF only."""
    tasks_before = set(Task.objects.values_list("pk", flat=True))
    modules_before = set(Module.objects.values_list("pk", flat=True))

    def forget_new_rows() -> None:
        Task.objects.exclude(pk__in=tasks_before).delete()
        Module.objects.exclude(pk__in=modules_before).delete()

    plain = send()
    forget_new_rows()
    with monkeypatch.context() as patch:
        patch.setattr(submission, "_plain_submission", lambda request: None)
        slow = send()
    forget_new_rows()
    return answer(plain), answer(slow)


def post_form(
    client: Client, path: str = "/tasks", wasm: bytes | None = HASH_WASM, **fields: Any
) -> Callable[..., Any]:
    """A function that posts the seed's form (with `fields` changed, None: left out)."""

    def send(**extra: Any) -> Any:
        data: dict[str, Any] = {k: v for k, v in seed_form(**fields).items() if v is not None}
        if wasm is not None:
            data["wasm"] = SimpleUploadedFile("hash.wasm", wasm)
        return client.post(path, data, **extra)

    return send


OTHER_MODULE = b"\x00asm\x01\x00\x00\x00\xff\xff"


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("path", "fields", "wasm"),
    [
        ("/tasks", {}, HASH_WASM),
        ("/tasks/", {}, HASH_WASM),
        ("/tasks", {"id": " padded ", "duration": "1.0", "start": "", "retries": "2"}, HASH_WASM),
        ("/tasks", {"id": None}, HASH_WASM),
        ("/tasks", {"id": "a/b"}, HASH_WASM),
        ("/tasks", {"description": "x" * 10_001}, HASH_WASM),
        ("/tasks", {"repeats": "many"}, HASH_WASM),
        ("/tasks", {"repeats": "-1", "delay": "-2", "input": "zero"}, HASH_WASM),
        ("/tasks", {"repeats": "10000000000"}, HASH_WASM),
        ("/tasks", {"input": str(2**63)}, HASH_WASM),
        ("/tasks", {"difficulty": "3.5"}, HASH_WASM),
        ("/tasks", {"duration": "nan"}, HASH_WASM),
        ("/tasks", {"start": "1e300"}, HASH_WASM),
        ("/tasks", {"retries": "11"}, HASH_WASM),
        ("/tasks", {"complete": "-1"}, HASH_WASM),
        ("/tasks/", {}, None),
        ("/tasks", {}, b""),
        ("/tasks", {}, b"not wasm at all"),
        ("/tasks", {}, OTHER_MODULE),
    ],
)
def test_every_form_gets_the_same_answer_as_through_drf_alone(
    client: Client,
    monkeypatch: pytest.MonkeyPatch,
    path: str,
    fields: dict[str, Any],
    wasm: bytes | None,
) -> None:
    plain, slow = both_ways(monkeypatch, post_form(client, path, wasm, **fields))
    assert plain == slow
    assert plain[0] in (201, 400)


@pytest.mark.django_db
@pytest.mark.parametrize(("raw", "content_type"), ODD_BODIES.values(), ids=list(ODD_BODIES))
def test_odd_encodings_get_the_same_answer_as_through_drf_alone(
    client: Client, monkeypatch: pytest.MonkeyPatch, raw: bytes, content_type: str
) -> None:
    plain, slow = both_ways(
        monkeypatch, lambda: client.generic("POST", "/tasks", raw, content_type=content_type)
    )
    assert plain == slow


@pytest.mark.django_db
def test_a_duplicate_id_is_409_either_way(client: Client, monkeypatch: pytest.MonkeyPatch) -> None:
    assert post_form(client)().status_code == 201
    plain, slow = both_ways(monkeypatch, post_form(client, description="again"))
    assert plain == slow
    assert plain[0] == 409 and plain[1]["field"] == "id"
    assert Task.objects.get(pk="task1").description == "Hash puzzle"


@pytest.mark.django_db
def test_a_module_over_its_limit_is_413_either_way(
    client: Client, monkeypatch: pytest.MonkeyPatch, settings: Any
) -> None:
    settings.WW_TASKS = dataclasses.replace(settings.WW_TASKS, module_max_bytes=len(HASH_WASM) - 1)
    plain, slow = both_ways(monkeypatch, post_form(client))
    assert plain == slow
    assert plain[0] == 413 and plain[1]["field"] == "wasm"
    assert not Task.objects.exists()


def with_custom_section(wasm: bytes, size: int) -> bytes:
    """`wasm` with a custom section (id 0) of about `size` bytes after its
    sections: still a valid module, and as large as wanted."""
    payload = b"\x04pad" + bytes(size)
    length, leb = len(payload), bytearray()
    while True:
        byte, length = length & 0x7F, length >> 7
        leb.append(byte | (0x80 if length else 0))
        if not length:
            return wasm + b"\x00" + bytes(leb) + payload


@pytest.mark.django_db
def test_a_body_over_the_in_memory_limit_is_parsed_by_drf(client: Client, settings: Any) -> None:
    big = with_custom_section(HASH_WASM, settings.DATA_UPLOAD_MAX_MEMORY_SIZE)
    assert submission._plain_form(drf(form_request(SEED, big))) is None
    response = post_form(client, wasm=big)()
    assert response.status_code == 201, response.content
    assert bytes(Module.objects.get(pk=Task.objects.get(pk="task1").module_id).wasm) == big


@pytest.mark.django_db
@pytest.mark.parametrize("bind", ["127.0.0.1", "0.0.0.0"])
def test_auth_refusals_are_the_same_either_way(
    client: Client, monkeypatch: pytest.MonkeyPatch, bind: str
) -> None:
    monkeypatch.setattr(permissions, "http_bind", bind)
    anonymous = both_ways(monkeypatch, post_form(client))
    wrong_token = both_ways(
        monkeypatch, lambda: post_form(client)(HTTP_AUTHORIZATION="Token " + "0" * 40)
    )
    for plain, slow in (anonymous, wrong_token):
        assert plain == slow
    assert wrong_token[0][0] == 401
    assert anonymous[0][0] == (201 if bind == "127.0.0.1" else 401)


@pytest.mark.django_db
def test_a_token_holder_on_a_public_bind_takes_the_plain_path(
    client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(permissions, "http_bind", "0.0.0.0")
    key = Token.objects.create(user=User.objects.create_user("ci")).key
    taken: list[Submission | None] = []
    plain_submission = submission._plain_submission

    def spy(request: Request) -> Submission | None:
        taken.append(plain_submission(request))
        return taken[-1]

    monkeypatch.setattr(submission, "_plain_submission", spy)
    response = post_form(client)(HTTP_AUTHORIZATION=f"Token {key}")
    assert response.status_code == 201, response.content
    assert taken and taken[0] is not None
