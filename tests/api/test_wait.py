"""`GET /tasks/<id>?wait=S` through the ASGI application, as daphne serves
it: answered as soon as the task's last run ends (ended through the
journal's writer, its events published on the channel layer as the journal
does), or after S seconds with the task as it is; bad values are 400s; at
the bound on waiters a 503 with Retry-After."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from asgiref.testing import ApplicationCommunicator

from tasks_app import events, run_records
from tasks_app.api.waiting import TaskWaiting
from tasks_app.journal import RunEnded, RunSent
from tasks_app.models import Iteration
from tests.api.asgi import asgi_request
from tests.api.forms import stored_task
from wwproject.asgi import application

pytestmark = pytest.mark.django_db(transaction=True)


def scope(path: str, query: str) -> dict[str, Any]:
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": query.encode(),
        "root_path": "",
        "headers": [(b"host", b"127.0.0.1:8080")],
        "client": ("127.0.0.1", 40000),
        "server": ("127.0.0.1", 8080),
    }


async def get(
    app: Any, path: str, query: str, timeout: float = 30
) -> tuple[int, Any, dict[str, str]]:
    call = ApplicationCommunicator(app, scope(path, query))
    await call.send_input({"type": "http.request", "body": b""})
    start = await call.receive_output(timeout)
    body = b""
    while True:
        message = await call.receive_output(timeout)
        body += message.get("body", b"")
        if not message.get("more_body"):
            break
    headers = {k.decode().lower(): v.decode() for k, v in start["headers"]}
    return start["status"], json.loads(body), headers


def end_run(run: Iteration) -> list[dict[str, Any]]:
    now = run.due_at
    return run_records.record_runs(
        [
            RunSent(run.pk, run.task_id, run.index, 1, "12D3KooWTest", now),
            RunEnded(
                run.pk,
                run.task_id,
                run.index,
                1,
                "12D3KooWTest",
                outcome="succeeded",
                run_state="succeeded",
                result="2832",
                started_at=now,
                finished_at=now,
            ),
        ]
    )


def test_wait_answers_as_soon_as_the_last_run_ends(layer: Any) -> None:
    (run,) = stored_task("w")

    async def scenario() -> tuple[float, Any]:
        started = time.monotonic()
        waiter = asyncio.ensure_future(get(application, "/tasks/w", "wait=20"))
        await asyncio.sleep(0.5)
        assert not waiter.done()
        changes = await sync_to_async(end_run)(run)
        await events.publish_runs(changes)  # as the journal does
        status, body, _ = await waiter
        assert status == 200
        return time.monotonic() - started, body

    took, body = asyncio.run(scenario())
    assert took < 3, took  # well before 20 s, and before the first slow re-check
    assert body["runs"][0]["state"] == "succeeded" and body["runs"][0]["result"] == "2832"


def test_wait_ends_at_its_time_with_the_task_as_it_is() -> None:
    stored_task("t")
    started = time.monotonic()
    status, _, content = asgi_request(application, "GET", "/tasks/t?wait=1.5")
    took = time.monotonic() - started
    assert status == 200
    assert 1.4 < took < 5, took
    assert json.loads(content)["runs"][0]["state"] == "pending"


def test_wait_on_a_finished_task_answers_at_once() -> None:
    (run,) = stored_task("done")
    end_run(run)
    started = time.monotonic()
    status, _, _ = asgi_request(application, "GET", "/tasks/done?wait=30")
    assert status == 200 and time.monotonic() - started < 2


@pytest.mark.parametrize("value", ["0", "-1", "61", "soon", "nan"])
def test_bad_waits_are_400s_naming_wait(value: str) -> None:
    stored_task("b")
    status, _, content = asgi_request(application, "GET", f"/tasks/b?wait={value}")
    assert status == 400 and json.loads(content)["field"] == "wait"


def test_an_unknown_task_is_a_404_at_once() -> None:
    status, _, _ = asgi_request(application, "GET", "/tasks/nope?wait=30")
    assert status == 404


def test_past_the_bound_on_waiters_a_503_with_retry_after() -> None:
    stored_task("full")
    app = TaskWaiting(application, max_waiters=0, recheck=5)
    status, body, headers = asyncio.run(get(app, "/tasks/full", "wait=5"))
    assert status == 503 and body["field"] == "wait" and headers["retry-after"] == "1"
