"""The bench's reading of the second contract's endpoints (bench/json_api.py):
which answers mean an endpoint is not served yet, and when a `?wait`
answer is the contract's."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bench.json_api import all_final, task_body, unavailable_reason, wait_honoured


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
