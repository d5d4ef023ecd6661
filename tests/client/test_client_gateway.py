"""tasks_app.client against a running gateway: Client and AsyncClient
upload, submit (one, many), wait, get, cancel and read outputs over real
HTTP, follow the websocket's run events, and raise one error type with the
gateway's status and JSON body. Real processes in a private network
namespace (tests/e2e/cluster.py); nothing is mocked."""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import Iterator
from typing import Any

import pytest

from tasks_app.client import AsyncClient, Client, ClientError, ConnectionFailed
from tests.client.conftest import HASH_WASM
from tests.e2e.cluster import HTTP, Cluster, running_cluster

URL = f"http://{HTTP}"


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    with running_cluster(tmp_path_factory.mktemp("client"), workers=1, concurrency=2) as cluster:
        yield cluster


@pytest.fixture
def client(cluster: Cluster) -> Iterator[Client]:
    """A client whose sockets live in the cluster's namespace."""
    with cluster.netns.entered(), Client(URL) as client:
        yield client


def results(task: dict[str, Any]) -> list[str]:
    return [run["result"] for run in task["runs"]]


def test_upload_answers_the_modules_sha256(client: Client) -> None:
    wasm = HASH_WASM.read_bytes()
    assert client.upload(HASH_WASM) == hashlib.sha256(wasm).hexdigest()
    assert client.upload(wasm) == hashlib.sha256(wasm).hexdigest()


def test_submit_then_wait_gives_every_runs_result(client: Client) -> None:
    created = client.submit(wasm=HASH_WASM, input=0, difficulty=3, repeats=2, delay=0.2)
    assert created["runs"] == 2
    done = client.wait(created["id"], timeout=30)
    assert done["state"] == "succeeded"
    assert results(done) == ["2832", "2832"]
    assert done["runs"][0]["worker"].startswith("12D3KooW")
    assert client.get(created["id"], runs_limit=1)["runs_by_state"]["succeeded"] == 2
    assert client.output(created["id"], 1) == b"2832"


def test_submit_by_sha256_with_the_new_fields(client: Client) -> None:
    sha = client.upload(HASH_WASM)
    created = client.submit(
        id="by-sha", module=sha, input=0, difficulty=5, description="five zeros", duration=10
    )
    assert created["id"] == "by-sha"
    assert results(client.wait("by-sha", timeout=30)) == ["610536"]


def test_submit_many_is_one_batch_in_order(client: Client) -> None:
    tasks = [{"wasm": HASH_WASM, "input": 0, "difficulty": 3, "id": f"many-{k}"} for k in range(3)]
    ids = client.submit_many(tasks)
    assert ids == ["many-0", "many-1", "many-2"]
    for task_id in ids:
        assert client.wait(task_id, timeout=30)["state"] == "succeeded"


def test_a_batch_with_one_bad_task_stores_none(client: Client) -> None:
    tasks = [
        {"wasm": HASH_WASM, "id": "all-0"},
        {"wasm": HASH_WASM, "id": "all-1", "repeats": -1},
    ]
    with pytest.raises(ClientError) as refused:
        client.submit_many(tasks)
    assert refused.value.status == 400
    assert refused.value.body["index"] == 1 and refused.value.body["field"] == "repeats"
    with pytest.raises(ClientError) as missing:
        client.get("all-0")
    assert missing.value.status == 404


def test_an_idempotency_key_answers_the_first_answer(client: Client) -> None:
    first = client.submit(wasm=HASH_WASM, difficulty=3, idempotency_key="key-1")
    again = client.submit(wasm=HASH_WASM, difficulty=3, idempotency_key="key-1")
    assert again["id"] == first["id"]
    with pytest.raises(ClientError) as other:
        client.submit(wasm=HASH_WASM, difficulty=4, idempotency_key="key-1")
    assert other.value.status == 409 and other.value.field == "Idempotency-Key"


def test_errors_carry_the_status_and_the_json_body(client: Client) -> None:
    with pytest.raises(ClientError) as missing:
        client.get("no-such-task")
    assert missing.value.status == 404
    assert missing.value.body["field"] == "id"
    assert "404" in str(missing.value)

    client.submit(id="taken", wasm=HASH_WASM, difficulty=3)
    with pytest.raises(ClientError) as taken:
        client.submit(id="taken", wasm=HASH_WASM, difficulty=3)
    assert taken.value.status == 409 and taken.value.field == "id"

    with pytest.raises(ClientError) as bad:
        client.submit(wasm=HASH_WASM, repeats=-1)
    assert bad.value.status == 400 and bad.value.field == "repeats"
    assert bad.value.body["problem"]

    with pytest.raises(ClientError) as module:
        client.upload(b"\x00asm but not really")
    assert module.value.status == 400


def test_a_gateway_that_does_not_answer_is_a_connection_failure(cluster: Cluster) -> None:
    with cluster.netns.entered(), Client("http://127.0.0.1:1", timeout=2) as client:
        with pytest.raises(ConnectionFailed) as failed:
            client.get("any")
        with pytest.raises(ClientError):  # the one type to catch
            client.events()
    assert failed.value.status is None


def test_wait_returns_the_task_as_it_is_at_its_timeout(client: Client) -> None:
    created = client.submit(wasm=HASH_WASM, start=3600)
    began = time.monotonic()
    task = client.wait(created["id"], timeout=2)
    waited = time.monotonic() - began
    assert 1.5 <= waited < 5, waited
    assert task["runs_by_state"]["pending"] == 1
    assert client.wait(created["id"], timeout=0)["runs_by_state"]["pending"] == 1
    summary = client.cancel(created["id"])
    assert summary["runs_by_state"]["cancelled"] == 1
    assert client.wait(created["id"], timeout=5)["state"] == "cancelled"


def test_events_follow_one_task_and_every_task(client: Client) -> None:
    with client.events() as every, client.events("watched") as one:
        client.submit(id="watched", wasm=HASH_WASM, difficulty=3)
        seen = _until_succeeded(one, "watched")
        assert seen[-1]["result"] == "2832" and seen[-1]["worker"].startswith("12D3KooW")
        assert {e["task"] for e in seen} == {"watched"}
        assert _until_succeeded(every, "watched")[-1]["type"] == "run.changed"


def _until_succeeded(stream: Any, task_id: str) -> list[dict[str, Any]]:
    seen: list[dict[str, Any]] = []
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        event = stream.recv(timeout=deadline - time.monotonic())
        assert event is not None, "the stream ended"
        seen.append(event)
        if event["task"] == task_id and event["state"] == "succeeded":
            return seen
    raise AssertionError(f"no success of {task_id} in {seen}")


def test_the_async_client_has_the_same_methods(cluster: Cluster) -> None:
    async def scenario() -> None:
        async with AsyncClient(URL) as client:
            sha = await client.upload(HASH_WASM)
            async with client.events("async-1") as stream:
                created = await client.submit(id="async-1", module=sha, difficulty=3)
                assert created["id"] == "async-1"
                async for event in stream:
                    if event["state"] == "succeeded":
                        assert event["result"] == "2832"
                        break
            done = await client.wait("async-1", timeout=30)
            assert results(done) == ["2832"]
            assert (await client.get("async-1"))["completions"] == 1
            ids = await client.submit_many([{"wasm": HASH_WASM, "difficulty": 3}] * 2)
            assert len(ids) == 2 and len(set(ids)) == 2
            later = await client.submit(wasm=HASH_WASM, start=3600)
            assert (await client.cancel(later["id"]))["runs_by_state"]["cancelled"] == 1
            assert await client.output("async-1", 0) == b"2832"
            with pytest.raises(ClientError) as missing:
                await client.get("no-such-task")
            assert missing.value.status == 404 and missing.value.body["field"] == "id"

    with cluster.netns.entered():
        asyncio.run(scenario())
