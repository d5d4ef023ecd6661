"""The REST API through Django's test client: the seed's form, validation,
listing and detail."""

from __future__ import annotations

import dataclasses
from datetime import timedelta

import pytest
from django.test import Client
from django.utils.dateparse import parse_datetime

from tasks_app.models import Iteration, Module, Task
from tests.api.forms import HASH_WASM
from tests.e2e.cluster import seed_form

pytestmark = pytest.mark.django_db


def post(client: Client, path: str = "/tasks", wasm: bytes = HASH_WASM, **fields: object):
    from django.core.files.uploadedfile import SimpleUploadedFile

    data = seed_form(**fields)
    data = {k: v for k, v in data.items() if v is not None}
    if wasm is not None:
        data["wasm"] = SimpleUploadedFile("hash.wasm", wasm)
    return client.post(path, data)


def test_seed_form_creates_the_task_and_its_three_runs(client: Client) -> None:
    response = post(client)
    assert response.status_code == 201, response.content
    body = response.json()
    for key, value in {
        "id": "task1",
        "description": "Hash puzzle",
        "completions": 0,
        "duration": 5,
        "start": 1,
        "delay": 2,
        "repeats": 3,
        "input": 0,
        "difficulty": 3,
    }.items():
        assert body[key] == value, key
    assert body["runs"] == 3 and body["state"] == "scheduled"
    assert response["Location"] == "/tasks/task1"
    detail = client.get(response["Location"]).json()
    received = parse_datetime(detail["received_at"])
    due = [parse_datetime(run["due_at"]) for run in detail["runs"]]
    assert due == [received + timedelta(seconds=s) for s in (1, 3, 5)]
    assert all(run["state"] == "pending" for run in detail["runs"])
    assert Iteration.objects.filter(task_id="task1").count() == 3


def test_both_slash_forms_answer_without_redirect(client: Client) -> None:
    assert post(client, "/tasks/", id="slash").status_code == 201
    for path in ("/tasks", "/tasks/", "/tasks/slash", "/tasks/slash/"):
        response = client.get(path)
        assert response.status_code == 200, path


def test_listing_is_a_json_array_with_the_seed_keys(client: Client) -> None:
    post(client)
    response = client.get("/tasks")
    listing = response.json()
    assert isinstance(listing, list) and len(listing) == 1
    seed_keys = {
        "id",
        "description",
        "completions",
        "duration",
        "start",
        "delay",
        "repeats",
        "input",
        "difficulty",
    }
    assert seed_keys <= set(listing[0])
    assert response["X-Total-Count"] == "1"


def test_same_module_bytes_are_stored_once(client: Client) -> None:
    assert post(client, id="a").status_code == 201
    assert post(client, id="b").status_code == 201
    assert Module.objects.count() == 1
    assert Task.objects.filter(module=Module.objects.get()).count() == 2


def test_duplicate_id_is_409_and_keeps_the_original(client: Client) -> None:
    post(client, description="first")
    response = post(client, description="second")
    assert response.status_code == 409
    assert response.json()["field"] == "id"
    assert Task.objects.get(pk="task1").description == "first"


@pytest.mark.parametrize(
    ("fields", "wasm", "field"),
    [
        ({"repeats": "-1"}, HASH_WASM, "repeats"),
        ({"delay": "-2"}, HASH_WASM, "delay"),
        ({"start": "-0.5"}, HASH_WASM, "start"),
        ({"duration": "-5"}, HASH_WASM, "duration"),
        ({"duration": "nan"}, HASH_WASM, "duration"),
        ({"start": "inf"}, HASH_WASM, "start"),
        ({"repeats": "10000000000"}, HASH_WASM, "repeats"),
        ({"input": "zero"}, HASH_WASM, "input"),
        ({"difficulty": "3.5"}, HASH_WASM, "difficulty"),
        ({"input": str(2**63)}, HASH_WASM, "input"),
        ({"id": None}, HASH_WASM, "id"),
        ({"id": "has space"}, HASH_WASM, "id"),
        ({"id": "a/b"}, HASH_WASM, "id"),
        ({"id": "x" * 201}, HASH_WASM, "id"),
        ({"complete": "x"}, HASH_WASM, "complete"),
        ({}, None, "wasm"),
        ({}, b"", "wasm"),
        ({}, b"not wasm at all", "wasm"),
        ({}, b"\x00asm\x01\x00\x00\x00\xff\xff", "wasm"),
    ],
)
def test_bad_fields_are_400_naming_the_field_and_store_nothing(
    client: Client, fields: dict[str, object], wasm: bytes | None, field: str
) -> None:
    response = post(client, wasm=wasm, **fields)
    assert response.status_code == 400, response.content
    body = response.json()
    assert body["field"] == field
    assert body["problem"]
    assert Task.objects.count() == 0
    assert Module.objects.count() == 0


def test_module_without_run_or_start_is_refused(client: Client) -> None:
    import wasmtime

    wasm = bytes(wasmtime.wat2wasm('(module (func (export "other")))'))
    response = post(client, wasm=wasm)
    assert response.status_code == 400
    assert "run" in response.json()["problem"]


def test_oversized_module_is_413(client: Client, settings) -> None:
    settings.WW_TASKS = dataclasses.replace(settings.WW_TASKS, module_max_bytes=1000)
    response = post(client, wasm=HASH_WASM + b"\x00" * 1000)
    assert response.status_code == 413
    assert response.json()["field"] == "wasm"
    assert Task.objects.count() == 0


def test_unknown_task_is_404_json(client: Client) -> None:
    response = client.get("/tasks/nope")
    assert response.status_code == 404
    assert response.json()["field"] == "id"


def test_pagination_keeps_the_array_and_links_the_next_page(client: Client) -> None:
    for k in range(5):
        assert post(client, id=f"t{k}").status_code == 201
    first = client.get("/tasks?limit=2")
    assert [t["id"] for t in first.json()] == ["t0", "t1"]
    assert first["X-Total-Count"] == "5"
    assert 'rel="next"' in first["Link"]
    next_url = first["Link"].split(">")[0].lstrip("<")
    second = client.get(next_url)
    assert [t["id"] for t in second.json()] == ["t2", "t3"]
    assert 'rel="prev"' in second["Link"]
    assert client.get("/tasks?limit=0").status_code == 400
    assert client.get("/tasks?offset=-1").status_code == 400
