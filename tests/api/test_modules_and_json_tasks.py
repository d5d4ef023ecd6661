"""Issue 17's REST surfaces through Django's test client: the module
registry, a JSON task with every field, a batch (all or nothing, the bad
task's index and field), Idempotency-Key (replay, conflict, nothing stored
twice) and a run's raw output."""

from __future__ import annotations

import base64
from typing import Any

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from tasks_app.models import IdempotencyKey, Iteration, Module, Task
from tests.api.forms import HASH_WASM, form

pytestmark = pytest.mark.django_db


def upload(client: Client) -> str:
    response = client.post("/modules", HASH_WASM, content_type="application/wasm")
    assert response.status_code in (200, 201), response.content
    return str(response.json()["sha256"])


def post_json(client: Client, path: str, body: Any, **headers: str) -> Any:
    return client.post(path, body, content_type="application/json", headers=headers)


def test_a_module_is_stored_once_and_listed_with_its_exports(client: Client) -> None:
    first = client.post("/modules", HASH_WASM, content_type="application/wasm")
    assert first.status_code == 201
    body = first.json()
    assert body.keys() == {"sha256", "kind", "size", "exports", "created_at"}
    assert body["kind"] == "run" and body["size"] == len(HASH_WASM)
    assert body["exports"] == ["memory", "run"]
    again = client.post("/modules", {"wasm": form()["wasm"]})  # multipart this time
    assert again.status_code == 200 and again.json() == body
    assert client.get("/modules").json() == [body]
    assert client.get("/modules").headers["X-Total-Count"] == "1"
    assert client.get(f"/modules/{body['sha256']}").json() == body
    assert Module.objects.get().exports == ["memory", "run"]


@pytest.mark.parametrize(
    ("path", "status", "field"),
    [("/modules/" + "0" * 64, 404, "sha256"), ("/modules/XYZ", 400, "sha256")],
)
def test_unknown_or_malformed_module_hashes(
    client: Client, path: str, status: int, field: str
) -> None:
    response = client.get(path)
    assert response.status_code == status
    assert response.json()["field"] == field


def test_bad_modules_are_refused_naming_the_field(client: Client) -> None:
    assert (
        client.post("/modules", b"nope", content_type="application/wasm").json()["field"] == "wasm"
    )
    assert client.post("/modules", b"", content_type="application/wasm").status_code == 400
    assert client.post("/modules", {}).json()["field"] == "wasm"


def test_a_json_task_with_every_field(client: Client) -> None:
    sha = upload(client)
    response = post_json(
        client,
        "/tasks",
        {
            "module": sha,
            "id": "j1",
            "description": "d",
            "input": 1,
            "difficulty": 2,
            "start": 0.5,
            "delay": 1,
            "repeats": 2,
            "duration": 3,
            "retries": 1,
            "args": ["a", "b c"],
            "stdin_base64": base64.b64encode(b"\xff\x00").decode(),
            "env": {"K": "v"},
            "priority": 0,
            "queue": "default",
            "constraints": {},
            "replicas": 1,
            "fuel": None,
        },
    )
    assert response.status_code == 201, response.content
    assert response.headers["Location"] == "/tasks/j1"
    body = response.json()
    assert body["args"] == ["a", "b c"] and body["env"] == {"K": "v"}
    assert body["stdin"] is None and base64.b64decode(body["stdin_base64"]) == b"\xff\x00"
    task = Task.objects.get(pk="j1")
    assert (task.args, bytes(task.stdin), task.env, task.repeats) == (
        ["a", "b c"],
        b"\xff\x00",
        {"K": "v"},
        2,
    )
    detail = client.get("/tasks/j1").json()
    assert detail["args"] == ["a", "b c"] and detail["stdin_base64"] == body["stdin_base64"]
    assert detail["runs"][0].keys() >= {"result", "result_base64", "result_truncated", "stderr"}


def test_a_json_task_by_bytes_gets_an_id_made_for_it(client: Client) -> None:
    response = post_json(
        client, "/tasks", {"wasm_base64": base64.b64encode(HASH_WASM).decode(), "stdin": "hi"}
    )
    assert response.status_code == 201, response.content
    task = Task.objects.get(pk=response.json()["id"])
    assert bytes(task.stdin) == b"hi" and task.args is None


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"priority": -101}, "priority"),
        ({"queue": ""}, "queue"),
        ({"queue": "q" * 101}, "queue"),
        ({"constraints": {"": "1"}}, "constraints"),
        ({"constraints": {"gpu": 1}}, "constraints.gpu"),
        ({"replicas": 3}, "replicas"),
        ({"fuel": 1000}, "fuel"),
        ({"priority": 101}, "priority"),
        ({"replicas": 6}, "replicas"),
        ({"args": ["a", 1]}, "args.1"),
        ({"args": ["x" * 70_000]}, "args"),
        ({"args": ["a"] * 300}, "args"),
        ({"env": {"A=B": "c"}}, "env"),
        ({"env": {"A": 1}}, "env.A"),
        ({"stdin": "a", "stdin_base64": "YQ=="}, "stdin"),
        ({"stdin_base64": "!!"}, "stdin_base64"),
        ({"stdin": "x" * (2**20 + 1)}, "stdin"),
        ({"repeats": True}, "repeats"),
        ({"bogus": 1}, "bogus"),
        ({"id": "bad id"}, "id"),
        ({"module": None}, "module"),
    ],
)
def test_bad_json_fields_are_400s_naming_the_field(
    client: Client, fields: dict[str, Any], field: str
) -> None:
    body = {"module": upload(client), **fields}
    if fields.get("module", "") is None:
        del body["module"]
    response = post_json(client, "/tasks", body)
    assert response.status_code == 400, response.content
    assert response.json()["field"] == field
    if field in ("replicas", "fuel") and "supported" in str(response.json()):
        assert "not supported yet" in response.json()["problem"]
    assert not Task.objects.exists()


def test_unknown_module_and_duplicate_id(client: Client) -> None:
    assert post_json(client, "/tasks", {"module": "a" * 64}).json()["field"] == "module"
    sha = upload(client)
    assert post_json(client, "/tasks", {"module": sha, "id": "x"}).status_code == 201
    again = post_json(client, "/tasks", {"module": sha, "id": "x"})
    assert again.status_code == 409 and again.json()["field"] == "id"


def test_deep_or_broken_json_is_a_400(client: Client) -> None:
    for body in ("[" * 100_000, "{", '{"module": NaN}'):
        response = client.post("/tasks", body, content_type="application/json")
        assert response.status_code == 400, body[:10]
        assert response.json()["field"] == "body"


def test_a_batch_is_stored_in_order(client: Client) -> None:
    sha = upload(client)
    tasks = [{"module": sha, "id": f"b{i}"} for i in range(3)] + [{"module": sha}]
    response = post_json(client, "/tasks/batch", {"tasks": tasks})
    assert response.status_code == 201, response.content
    ids = response.json()["ids"]
    assert ids[:3] == ["b0", "b1", "b2"] and len(ids) == 4
    assert Iteration.objects.count() == 4


def test_a_bad_batch_stores_nothing_and_names_index_and_field(client: Client) -> None:
    sha = upload(client)
    tasks = [{"module": sha}] * 17 + [{"module": sha, "repeats": -1}]
    response = post_json(client, "/tasks/batch", {"tasks": tasks})
    assert response.status_code == 400
    assert (response.json()["index"], response.json()["field"]) == (17, "repeats")
    response = post_json(client, "/tasks/batch", {"tasks": [{"module": sha, "id": "d"}] * 2})
    assert (response.status_code, response.json()["index"], response.json()["field"]) == (
        400,
        1,
        "id",
    )
    post_json(client, "/tasks", {"module": sha, "id": "taken"})
    response = post_json(
        client, "/tasks/batch", {"tasks": [{"module": sha}, {"module": sha, "id": "taken"}]}
    )
    assert (response.status_code, response.json()["index"]) == (409, 1)
    assert Task.objects.count() == 1
    bad: list[Any] = [{"tasks": []}, {"tasks": "x"}, [], {"tasks": [{}], "more": 1}]
    for body in bad:
        assert post_json(client, "/tasks/batch", body).status_code == 400


def test_a_batch_over_the_limits(client: Client, settings: Any) -> None:
    sha = upload(client)
    settings.WW_TASKS = type(settings.WW_TASKS)(batch_max_tasks=2, batch_max_bytes=1000)
    too_many = post_json(client, "/tasks/batch", {"tasks": [{"module": sha}] * 3})
    assert too_many.status_code == 400 and too_many.json()["field"] == "tasks"
    too_big = post_json(
        client, "/tasks/batch", {"tasks": [{"module": sha, "description": "x" * 2000}]}
    )
    assert too_big.status_code == 413


def test_ten_thousand_tasks_by_hash_are_stored_in_few_statements(client: Client) -> None:
    """Many rows a statement (no timing here: bench/ measures the speed)."""
    sha = upload(client)
    with CaptureQueriesContext(connection) as queries:
        response = post_json(client, "/tasks/batch", {"tasks": [{"module": sha}] * 10_000})
    assert response.status_code == 201
    assert Task.objects.count() == 10_000 and Iteration.objects.count() == 10_000
    inserts = [q for q in queries.captured_queries if q["sql"].startswith("INSERT")]
    assert len(inserts) < 500, len(inserts)  # one a task would be 20,000


@pytest.mark.parametrize("path", ["/tasks", "/tasks/batch"])
def test_idempotency_replays_and_conflicts(client: Client, path: str) -> None:
    sha = upload(client)
    one: Any = {"module": sha, "id": "i1"}
    body: Any = one if path == "/tasks" else {"tasks": [one]}
    first = post_json(client, path, body, **{"Idempotency-Key": "k"})
    again = post_json(client, path, body, **{"Idempotency-Key": "k"})
    assert first.status_code == again.status_code == 201
    assert first.json() == again.json()
    assert again.headers["Idempotent-Replayed"] == "true"
    assert Task.objects.count() == 1
    other: Any = {"module": sha, "id": "i2"}
    conflict = post_json(
        client, path, other if path == "/tasks" else {"tasks": [other]}, **{"Idempotency-Key": "k"}
    )
    assert conflict.status_code == 409 and conflict.json()["field"] == "Idempotency-Key"
    assert Task.objects.count() == 1 and IdempotencyKey.objects.count() == 1


def test_idempotency_on_the_seed_form(client: Client) -> None:
    first = client.post("/tasks", form(id="f"), headers={"Idempotency-Key": "f"})
    again = client.post("/tasks", form(id="f"), headers={"Idempotency-Key": "f"})
    assert (first.status_code, again.status_code) == (201, 201)
    assert first.json() == again.json() and again.headers["Location"] == "/tasks/f"
    other = client.post("/tasks", form(id="g"), headers={"Idempotency-Key": "f"})
    assert other.status_code == 409
    assert client.post("/tasks", form(id="h"), headers={"Idempotency-Key": "é"}).status_code == 400
    assert Task.objects.count() == 1


def test_idempotency_keys_are_bounded(client: Client, settings: Any) -> None:
    sha = upload(client)
    settings.WW_TASKS = type(settings.WW_TASKS)(idempotency_max_keys=2)
    for key in ("a", "b"):
        assert (
            post_json(client, "/tasks", {"module": sha}, **{"Idempotency-Key": key}).status_code
            == 201
        )
    full = post_json(client, "/tasks", {"module": sha}, **{"Idempotency-Key": "c"})
    assert full.status_code == 503 and full.headers["Retry-After"]
    assert full.json()["field"] == "Idempotency-Key"
    IdempotencyKey.objects.update(created_at="2000-01-01T00:00:00Z")  # expired: purged
    assert (
        post_json(client, "/tasks", {"module": sha}, **{"Idempotency-Key": "c"}).status_code == 201
    )
    assert IdempotencyKey.objects.count() == 1


def test_a_runs_output_raw(client: Client) -> None:
    sha = upload(client)
    post_json(client, "/tasks", {"module": sha, "id": "o", "repeats": 2})
    Iteration.objects.filter(task_id="o", index=0).update(result="2832 é")
    Iteration.objects.filter(task_id="o", index=1).update(result="", result_bytes=b"\xff\x00")
    text = client.get("/tasks/o/runs/0/output")
    assert text.status_code == 200 and text["Content-Type"] == "application/octet-stream"
    assert text.content == "2832 é".encode()
    assert client.get("/tasks/o/runs/1/output").content == b"\xff\x00"
    assert client.get("/tasks/o").json()["runs"][1]["result_base64"] == "/wA="
    assert client.get("/tasks/o/runs/2/output").status_code == 404
    assert client.get("/tasks/nope/runs/0/output").json()["field"] == "id"


def test_a_batch_bigger_than_djangos_body_limit_is_taken(client: Client) -> None:
    """10,000 tasks with a description each are ~2 MB: over Django's
    DATA_UPLOAD_MAX_MEMORY_SIZE (1 MiB), under WW_BATCH_MAX_BYTES (16 MiB)."""
    sha = upload(client)
    tasks = [{"module": sha, "description": f"task {k} " + "x" * 150} for k in range(10_000)]
    response = post_json(client, "/tasks/batch", {"tasks": tasks})
    assert response.status_code == 201, response.content[:300]
    assert len(response.json()["ids"]) == 10_000
    assert Task.objects.filter(description__startswith="task 9999 ").count() == 1
