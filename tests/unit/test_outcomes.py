"""A worker's answer is read defensively: real Cap'n Proto Outcome readers,
well formed or built byte by byte as a hostile member would send them."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

import schema
from cluster_app.worker_link import read_outcome
from tasks_app.outcomes import MalformedAnswer

LIMIT = 1024
NOW_NS = 1_800_000_000 * 10**9


def _message(**fields: Any) -> bytes:
    outcome = schema.worker.Outcome.new_message()
    outcome.state = fields.pop("state", "succeeded")
    outcome.startedAtNs = fields.pop("startedAtNs", NOW_NS)
    outcome.finishedAtNs = fields.pop("finishedAtNs", NOW_NS + 1_000)
    for name, value in fields.items():
        setattr(outcome, name, value)
    return outcome.to_bytes()


@contextmanager
def _reader(data: bytes) -> Iterator[Any]:
    with schema.worker.Outcome.from_bytes(data) as reader:
        yield reader


def test_a_well_formed_outcome_is_copied_whole() -> None:
    data = _message(state="timedOut", result="42", error="stopped", hasExitCode=True, exitCode=3)
    with _reader(data) as reader:
        outcome = read_outcome(reader, max_text_bytes=LIMIT)
    assert (outcome.state, outcome.result, outcome.error, outcome.exit_code) == (
        "timed_out",
        "42",
        "stopped",
        3,
    )
    assert outcome.started_at is not None and outcome.finished_at is not None
    assert outcome.finished_at > outcome.started_at


def test_an_unknown_state_is_malformed() -> None:
    data = bytearray(_message(state="failed"))
    assert data[16] == 1  # the state: first field of the data section
    data[16] = 9
    with _reader(bytes(data)) as reader, pytest.raises(MalformedAnswer):
        read_outcome(reader, max_text_bytes=LIMIT)


def test_invalid_utf8_in_the_result_is_malformed() -> None:
    with _reader(_message(result=b"\xff\xfe not text")) as reader:
        with pytest.raises(MalformedAnswer, match="unreadable"):
            read_outcome(reader, max_text_bytes=LIMIT)


def test_a_result_over_the_limit_is_malformed_and_names_it() -> None:
    with _reader(_message(result="x" * (LIMIT + 1))) as reader:
        with pytest.raises(MalformedAnswer, match=f"over the {LIMIT}-byte limit"):
            read_outcome(reader, max_text_bytes=LIMIT)
    with _reader(_message(error="é" * LIMIT)) as reader:  # 2 bytes each
        with pytest.raises(MalformedAnswer, match="error of"):
            read_outcome(reader, max_text_bytes=LIMIT)


def test_times_that_are_not_dates_or_run_backwards_are_malformed() -> None:
    for fields in (
        {"startedAtNs": -5},
        {"finishedAtNs": 2**63 - 1},
        {"startedAtNs": NOW_NS, "finishedAtNs": NOW_NS - 10**9},
    ):
        with _reader(_message(**fields)) as reader, pytest.raises(MalformedAnswer):
            read_outcome(reader, max_text_bytes=LIMIT)


def test_nul_characters_are_replaced_not_stored() -> None:
    with _reader(_message(result="a\x00b")) as reader:
        assert read_outcome(reader, max_text_bytes=LIMIT).result == "a\ufffdb"


@given(st.binary(max_size=200))
def test_any_bytes_as_an_answer_either_read_or_are_malformed(data: bytes) -> None:
    try:
        context = schema.worker.Outcome.from_bytes(data)
        reader = context.__enter__()
    except Exception:  # noqa: BLE001 - not even a message: the RPC layer refuses it
        return
    try:
        outcome = read_outcome(reader, max_text_bytes=LIMIT)
    except MalformedAnswer:
        return
    finally:
        context.__exit__(None, None, None)
    assert outcome.state in {"succeeded", "failed", "timed_out", "cancelled"}
    assert len(outcome.result.encode()) <= LIMIT


def test_binary_output_and_stderr_are_copied() -> None:
    data = _message(resultBytes=b"\xff\x00raw", resultTruncated=True, stderr="warn\n")
    with _reader(data) as reader:
        outcome = read_outcome(reader, max_text_bytes=LIMIT)
    assert (outcome.result, outcome.result_bytes) == ("", b"\xff\x00raw")
    assert outcome.result_truncated and outcome.stderr == "warn\n"


def test_an_answer_without_the_new_fields_reads_as_text_output_without_stderr() -> None:
    with _reader(_message(result="42")) as reader:
        outcome = read_outcome(reader, max_text_bytes=LIMIT)
    assert (outcome.result_bytes, outcome.result_truncated, outcome.stderr) == (None, False, "")


def test_binary_output_or_stderr_over_the_limit_is_malformed() -> None:
    with _reader(_message(resultBytes=b"\xff" * (LIMIT + 1))) as reader:
        with pytest.raises(MalformedAnswer, match="resultBytes of"):
            read_outcome(reader, max_text_bytes=LIMIT)
    with _reader(_message(stderr="e" * (LIMIT + 1))) as reader:
        with pytest.raises(MalformedAnswer, match="stderr of"):
            read_outcome(reader, max_text_bytes=LIMIT)


def test_an_output_both_as_text_and_as_bytes_is_malformed() -> None:
    with _reader(_message(result="text", resultBytes=b"\xff")) as reader:
        with pytest.raises(MalformedAnswer, match="both"):
            read_outcome(reader, max_text_bytes=LIMIT)


def test_stderr_that_is_not_utf8_is_malformed() -> None:
    with _reader(_message(stderr=b"\xff\xfe")) as reader:
        with pytest.raises(MalformedAnswer, match="unreadable"):
            read_outcome(reader, max_text_bytes=LIMIT)
