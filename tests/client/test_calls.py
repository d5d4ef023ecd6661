"""What the client asks the gateway, without I/O (tasks_app.client.calls):
long-poll steps, task bodies, finality, event URLs."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from tasks_app.client import ClientError, calls

WASM = b"\x00asm\x01\x00\x00\x00"
SHA = hashlib.sha256(WASM).hexdigest()


@pytest.mark.parametrize(
    ("remaining", "wait"),
    [(None, "60"), (600.0, "60"), (2.5, "2.5"), (0.0004, None), (-1.0, None)],
)
def test_a_wait_step_asks_at_most_60_s_and_nothing_when_no_time_is_left(
    remaining: float | None, wait: str | None
) -> None:
    step = calls.wait_step("t 1", remaining)
    assert step.path == "/tasks/t%201"
    assert (step.params or {}).get("wait") == wait
    assert step.extra_time == (float(wait) if wait else 0.0)


def test_a_body_names_the_module_by_sha256_and_encodes_bytes_of_stdin(tmp_path: Path) -> None:
    path = tmp_path / "m.wasm"
    path.write_bytes(WASM)
    tasks = [{"wasm": str(path), "stdin": b"\xff"}, {"wasm": WASM, "stdin": "text"}]
    assert calls.modules_to_upload(tasks, {}) == [WASM]  # one upload per content
    assert calls.modules_to_upload(tasks, {SHA: SHA}) == []
    assert calls.task_body(tasks[0], {SHA: SHA}) == {"module": SHA, "stdin_base64": "/w=="}
    assert calls.task_body(tasks[1], {SHA: SHA}) == {"module": SHA, "stdin": "text"}


def test_a_module_that_cannot_be_read_is_a_client_error(tmp_path: Path) -> None:
    with pytest.raises(ClientError, match="cannot read"):
        calls.module_bytes(tmp_path / "missing.wasm")


def test_final_means_every_run_ended() -> None:
    counts = dict.fromkeys(("pending", "running", "succeeded", "failed"), 0)
    assert calls.is_final({"run_count": 2, "runs_by_state": {**counts, "succeeded": 2}})
    assert not calls.is_final({"run_count": 2, "runs_by_state": {**counts, "running": 1}})
    assert not calls.is_final({"runs": 1})  # a summary without counts


def test_event_urls() -> None:
    assert calls.events_url("http://h:8080", None) == "ws://h:8080/ws/tasks/"
    assert calls.events_url("https://h", "a/b") == "wss://h/ws/tasks/a%2Fb/"
