"""The bench's reading of the second contract's endpoints (bench/json_api.py):
which answers mean an endpoint is not served yet, and when a `?wait`
answer is the contract's; its client against a real HTTP server on
loopback that lacks them."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bench.json_api import (
    JsonClient,
    Unavailable,
    all_final,
    task_body,
    unavailable_reason,
    wait_honoured,
)


@pytest.mark.parametrize("status", [404, 405, 415, 501])
def test_no_route_or_method_is_not_served(status: int) -> None:
    reason = unavailable_reason("POST /tasks/batch", status, b"")
    assert reason is not None and str(status) in reason


@pytest.mark.parametrize("status", [200, 201, 409, 413, 429, 500])
def test_the_endpoints_own_answers_are_not_unavailability(status: int) -> None:
    assert unavailable_reason("POST /modules", status, b'{"field": "wasm"}') is None


def test_a_json_task_read_as_the_seeds_form_is_not_served() -> None:
    form_answer = json.dumps({"field": "wasm", "problem": "required"}).encode()
    assert unavailable_reason("POST /tasks (JSON, module by hash)", 400, form_answer) is not None
    # A 400 of the JSON endpoint itself names another field; so does one elsewhere.
    own = json.dumps({"field": "module", "problem": "no such module"}).encode()
    assert unavailable_reason("POST /tasks (JSON, module by hash)", 400, own) is None
    assert unavailable_reason("POST /modules", 400, form_answer) is None
    assert unavailable_reason("POST /tasks (JSON, module by hash)", 400, b"not json") is None


def _detail(*states: str) -> dict[str, object]:
    return {"id": "t", "runs": [{"state": s} for s in states]}


def test_every_run_final_is_all_final() -> None:
    assert all_final(_detail("succeeded", "failed", "timed_out", "cancelled"))
    assert not all_final(_detail("succeeded", "running"))
    assert not all_final(_detail())  # no runs listed yet: nothing to call final


@given(elapsed=st.floats(min_value=0, max_value=100), wait=st.floats(min_value=0.1, max_value=60))
def test_a_wait_is_honoured_when_final_or_when_it_ran_out(elapsed: float, wait: float) -> None:
    assert wait_honoured(_detail("succeeded"), elapsed, wait)
    assert wait_honoured(_detail("pending"), elapsed, wait) is (elapsed >= 0.9 * wait)


def test_a_task_body_names_the_module_by_hash_and_no_id() -> None:
    body = task_body("ab" * 32, input=0, difficulty=5)
    assert body == {"module": "ab" * 32, "input": 0, "difficulty": 5}


Answer = tuple[int, object]


@contextmanager
def gateway(answers: dict[tuple[str, str], Answer]) -> Iterator[int]:
    """An HTTP/1.1 server on 127.0.0.1 in a thread answering (method, path
    without the query) from `answers`, else 404; yields its port."""

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, as the gateway

        def _answer(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            self.rfile.read(length)
            key = (self.command, self.path.split("?")[0])
            status, body = answers.get(key, (404, {"field": "path", "problem": "no route"}))
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = _answer

        def log_message(self, format: str, *args: object) -> None:
            pass

    srv = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    try:
        yield int(srv.server_address[1])
    finally:
        srv.shutdown()
        srv.server_close()
        thread.join(10)


def test_a_gateway_without_the_endpoints_is_reported_unavailable() -> None:
    form_answer: Answer = (400, {"field": "wasm", "problem": "required"})
    with gateway({("POST", "/tasks"): form_answer}) as port:
        client = JsonClient(port)
        try:
            with pytest.raises(Unavailable, match="POST /modules: answered 404"):
                client.upload(b"\0asm")
            with pytest.raises(Unavailable, match="read as the seed's form"):
                client.submit_json(task_body("ab" * 32))
            with pytest.raises(Unavailable, match="POST /tasks/batch: answered 404"):
                client.submit_batch([task_body("ab" * 32)])
        finally:
            client.close()


def test_a_wait_answered_early_with_a_run_open_is_reported_unavailable() -> None:
    answers: dict[tuple[str, str], Answer] = {
        ("GET", "/tasks/open"): (200, _detail("pending")),
        ("GET", "/tasks/done"): (200, _detail("succeeded")),
        ("POST", "/modules"): (201, {"sha256": "ab" * 32}),
        ("POST", "/tasks/batch"): (201, {"ids": ["a", "b"]}),
    }
    with gateway(answers) as port:
        client = JsonClient(port)
        try:
            with pytest.raises(Unavailable, match="not honoured"):
                client.wait("open", 10)
            assert all_final(client.wait("done", 10))
            assert client.upload(b"\0asm") == "ab" * 32
            assert client.submit_batch([task_body("ab" * 32)] * 2) == ["a", "b"]
        finally:
            client.close()


def test_an_error_of_the_endpoint_itself_is_an_error_not_unavailability() -> None:
    with gateway(
        {("POST", "/tasks/batch"): (413, {"field": "body", "problem": "too big"})}
    ) as port:
        client = JsonClient(port)
        try:
            with pytest.raises(RuntimeError, match="413") as caught:
                client.submit_batch([task_body("ab" * 32)])
            assert not isinstance(caught.value, Unavailable)
        finally:
            client.close()
