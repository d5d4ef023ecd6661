"""The worker's WebAssembly executor: results, limits and faults, each ending in a RunOutcome."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from wasmtime import wat2wasm

from tasks_app.modules import module_hash
from tests.security import hostile
from workers.executor import Executor, RunOutcome, RunRequest
from workers.output import TRUNCATED_MARKER
from workers.placement import INLINE_BELOW, INLINE_BUDGET

REPO = Path(__file__).resolve().parents[2]
HASH_WASM = REPO / "hash.wasm"
HASH_CMD_WASM = REPO / "examples" / "hash" / "hash_cmd.wasm"
MEMORY_LIMIT = 32 * 1024 * 1024
PAGE = 64 * 1024

UNREACHABLE = '(module (func (export "run") (param i64 i64) (result i64) unreachable))'
INFINITE_LOOP = """
(module (func (export "run") (param i64 i64) (result i64) (loop (br 0)) (i64.const 0)))
"""
DEEP_RECURSION = """
(module (func $f (export "run") (param i64 i64) (result i64)
  (i64.add (call $f (local.get 0) (local.get 1)) (i64.const 1))))
"""
# Grows one page at a time until memory.grow fails, then reports the pages it got.
GROW_UNTIL_REFUSED = """
(module (memory 1)
  (func (export "run") (param i32 i32) (result i32)
    (loop (br_if 0 (i32.ne (memory.grow (i32.const 1)) (i32.const -1))))
    (memory.size)))
"""
# Grows until refused, then traps: the shape of a module that assumes malloc succeeds.
GROW_THEN_TRAP = """
(module (memory 1)
  (func (export "run") (param i32 i32) (result i32)
    (loop (br_if 0 (i32.ne (memory.grow (i32.const 16)) (i32.const -1))))
    unreachable))
"""
IDENTITY_I32 = '(module (func (export "run") (param i32 i32) (result i32) (local.get 0)))'
IDENTITY_I64 = '(module (func (export "run") (param i64 i64) (result i64) (local.get 0)))'
HUGE_STDOUT = """
(module
  (import "wasi_snapshot_preview1" "fd_write" (func $write (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (func (export "_start") (local $i i32)
    (i32.store (i32.const 0) (i32.const 16))    ;; iovec.buf
    (i32.store (i32.const 4) (i32.const 1024))  ;; iovec.len
    (memory.fill (i32.const 16) (i32.const 120) (i32.const 1024))
    (loop
      (drop (call $write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8)))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br_if 0 (i32.lt_u (local.get $i) (i32.const 1024))))))
"""
ENDLESS_STDOUT = """
(module
  (import "wasi_snapshot_preview1" "fd_write" (func $write (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (func (export "_start")
    (i32.store (i32.const 0) (i32.const 16))
    (i32.store (i32.const 4) (i32.const 65000))
    (memory.fill (i32.const 16) (i32.const 121) (i32.const 65000))
    (loop (drop (call $write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8))) (br 0))))
"""
EXIT_3_WITH_STDERR = """
(module
  (import "wasi_snapshot_preview1" "fd_write" (func $write (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
  (memory (export "memory") 1)
  (data (i32.const 16) "boom: bad input\\n")
  (func (export "_start")
    (i32.store (i32.const 0) (i32.const 16))
    (i32.store (i32.const 4) (i32.const 16))
    (drop (call $write (i32.const 2) (i32.const 0) (i32.const 1) (i32.const 8)))
    (call $exit (i32.const 3))))
"""


@pytest.fixture
def executor() -> Iterator[Executor]:
    ex = Executor(
        concurrency=2, memory_limit=MEMORY_LIMIT, output_limit=4096, default_time_limit=10.0
    )
    try:
        yield ex
    finally:
        ex.close()


@pytest.fixture(scope="session")
def hash_cmd_wasm(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    if HASH_CMD_WASM.exists():
        return HASH_CMD_WASM.read_bytes()
    out = tmp_path_factory.mktemp("build")
    subprocess.run(
        [sys.executable, str(REPO / "examples" / "build.py"), "--out-dir", str(out)],
        check=True,
        timeout=300,
    )
    return (out / "hash_cmd.wasm").read_bytes()


def request(
    wasm: bytes,
    input: int = 0,
    difficulty: int = 0,
    *,
    time_limit: float = 0.0,
    task_id: str = "task-1",
) -> RunRequest:
    return RunRequest(
        task_id=task_id,
        module_hash=module_hash(wasm),
        wasm=wasm,
        input=input,
        difficulty=difficulty,
        time_limit=time_limit,
    )


def run_wat(executor: Executor, wat: str, *args: int, time_limit: float = 0.0) -> RunOutcome:
    return executor.execute(request(wat2wasm(wat), *args, time_limit=time_limit))


@pytest.mark.parametrize(("difficulty", "expected"), [(3, "2832"), (5, "610536")])
def test_hash_wasm_solves_the_puzzle(executor: Executor, difficulty: int, expected: str) -> None:
    outcome = executor.execute(request(HASH_WASM.read_bytes(), 0, difficulty))
    assert (outcome.state, outcome.result, outcome.error) == ("succeeded", expected, "")
    assert outcome.exit_code is None
    assert outcome.started_at <= outcome.finished_at


def test_wasi_command_prints_result_and_records_exit_code(
    executor: Executor, hash_cmd_wasm: bytes
) -> None:
    outcome = executor.execute(request(hash_cmd_wasm, 0, 3))
    assert (outcome.state, outcome.result, outcome.exit_code) == ("succeeded", "2832\n", 0)


def test_trap_fails_with_message_and_executor_keeps_working(executor: Executor) -> None:
    outcome = run_wat(executor, UNREACHABLE, 1, 2)
    assert outcome.state == "failed"
    assert "unreachable" in outcome.error
    assert "backtrace" not in outcome.error
    after = executor.execute(request(HASH_WASM.read_bytes(), 0, 3))
    assert (after.state, after.result) == ("succeeded", "2832")


def test_infinite_loop_times_out_at_its_limit(executor: Executor) -> None:
    outcome = run_wat(executor, INFINITE_LOOP, 0, 0, time_limit=0.3)
    assert outcome.state == "timed_out"
    assert outcome.error == "time limit of 0.3 s exceeded"
    assert 0.25 <= outcome.finished_at - outcome.started_at < 2.0


def test_memory_growth_is_capped_at_the_memory_limit(executor: Executor) -> None:
    outcome = run_wat(executor, GROW_UNTIL_REFUSED, 0, 0)
    assert outcome.state == "succeeded"
    assert int(outcome.result) == MEMORY_LIMIT // PAGE


def test_memory_bomb_fails_while_a_concurrent_run_succeeds(executor: Executor) -> None:
    async def both() -> list[RunOutcome]:
        return await asyncio.gather(
            executor.run(request(wat2wasm(GROW_THEN_TRAP), task_id="bomb")),
            executor.run(request(HASH_WASM.read_bytes(), 0, 4, task_id="good")),
        )

    bomb, good = asyncio.run(both())
    assert bomb.state == "failed" and "unreachable" in bomb.error
    assert (good.state, good.result) == ("succeeded", "69732")


def test_module_needing_more_memory_than_the_limit_fails(executor: Executor) -> None:
    wat = '(module (memory 1024) (func (export "run") (param i32 i32) (result i32) (i32.const 0)))'
    outcome = run_wat(executor, wat, 0, 0)
    assert outcome.state == "failed"
    assert "memory" in outcome.error


def test_deep_recursion_fails_with_stack_overflow(executor: Executor) -> None:
    outcome = run_wat(executor, DEEP_RECURSION, 0, 0)
    assert outcome.state == "failed"
    assert outcome.error == "stack overflow (wasm trap: call stack exhausted)"


def test_huge_stdout_is_bounded_to_output_limit(executor: Executor) -> None:
    outcome = run_wat(executor, HUGE_STDOUT, 0, 0)
    assert outcome.state == "succeeded" and outcome.exit_code == 0
    assert outcome.result == "x" * 4096 + TRUNCATED_MARKER
    assert outcome.result_truncated


def test_endless_stdout_times_out_with_bounded_result(executor: Executor) -> None:
    outcome = run_wat(executor, ENDLESS_STDOUT, 0, 0, time_limit=0.3)
    assert outcome.state == "timed_out"
    assert outcome.result == "y" * 4096 + TRUNCATED_MARKER
    assert outcome.result_truncated


def test_wasi_nonzero_exit_fails_with_exit_code_and_stderr(executor: Executor) -> None:
    outcome = run_wat(executor, EXIT_3_WITH_STDERR, 0, 0)
    assert (outcome.state, outcome.exit_code, outcome.result) == ("failed", 3, "")
    assert outcome.error.startswith("exit code 3")
    assert "boom: bad input" in outcome.error


def test_run_that_calls_proc_exit_fails_with_exit_code(executor: Executor) -> None:
    wat = """
    (module
      (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
      (memory (export "memory") 1)
      (func (export "run") (param i64 i64) (result i64) (call $exit (i32.const 7)) (i64.const 0)))
    """
    outcome = run_wat(executor, wat, 0, 0)
    assert (outcome.state, outcome.exit_code) == ("failed", 7)
    assert "exited with code 7" in outcome.error


@pytest.mark.parametrize("time_limit", [0.0, -1.0, float("inf"), float("nan")])
def test_unusable_time_limit_means_the_default(time_limit: float) -> None:
    with Executor(concurrency=1, default_time_limit=0.2) as ex:
        outcome = run_wat(ex, INFINITE_LOOP, 0, 0, time_limit=time_limit)
    assert (outcome.state, outcome.error) == ("timed_out", "time limit of 0.2 s exceeded")


def test_i32_result_is_read_as_unsigned(executor: Executor) -> None:
    assert run_wat(executor, IDENTITY_I32, -5, 0).result == str(2**32 - 5)


def test_i64_result_is_read_as_unsigned(executor: Executor) -> None:
    assert run_wat(executor, IDENTITY_I64, -1, 0).result == str(2**64 - 1)


def test_arguments_wrap_to_the_parameter_width(executor: Executor) -> None:
    assert run_wat(executor, IDENTITY_I32, 2**32 + 7, 0).result == "7"
    assert run_wat(executor, IDENTITY_I64, 2**64 + 7, 0).result == "7"


def test_mixed_parameter_widths_and_negative_results(executor: Executor) -> None:
    mixed = """(module (func (export "run") (param i64 i32) (result i32)
        (i32.sub (i32.wrap_i64 (local.get 0)) (local.get 1))))"""
    assert run_wat(executor, mixed, 5, 7).result == str(2**32 - 2)  # -2 as unsigned i32
    assert run_wat(executor, mixed, -1, 2**31).result == str(2**31 - 1)


def test_outcomes_of_several_runs_come_back_in_their_order(executor: Executor) -> None:
    wasm = HASH_WASM.read_bytes()
    requests = [request(wasm, k, 2) for k in range(6)]
    expected = [executor.execute(r).result for r in requests]
    assert len(set(expected)) > 1
    with Executor(concurrency=2) as ex:
        outcomes = asyncio.run(ex.run_many(requests[::-1]))
    assert [o.result for o in outcomes] == expected[::-1]


def test_same_module_is_compiled_once(executor: Executor) -> None:
    wasm = HASH_WASM.read_bytes()
    assert not executor.has_module(module_hash(wasm))
    first = executor.execute(request(wasm, 0, 3))
    second = executor.execute(request(wasm, 0, 3))
    assert first.result == second.result == "2832"
    assert executor.compiled_count == 1
    assert executor.has_module(module_hash(wasm))


def test_concurrent_first_runs_of_a_module_compile_it_once() -> None:
    wasm = HASH_WASM.read_bytes()

    async def many(ex: Executor) -> list[RunOutcome]:
        return await asyncio.gather(*(ex.run(request(wasm, i, 2)) for i in range(8)))

    with Executor(concurrency=4) as ex:
        outcomes = asyncio.run(many(ex))
        assert ex.compiled_count == 1
    assert all(o.state == "succeeded" for o in outcomes)


def test_cached_module_runs_without_bytes(executor: Executor) -> None:
    wasm = HASH_WASM.read_bytes()
    executor.execute(request(wasm, 0, 3))
    cached = RunRequest(
        task_id="t", module_hash=module_hash(wasm), wasm=b"", input=0, difficulty=3, time_limit=0
    )
    assert executor.execute(cached).result == "2832"
    unknown = RunRequest(
        task_id="t", module_hash="0" * 64, wasm=b"", input=0, difficulty=3, time_limit=0
    )
    outcome = executor.execute(unknown)
    assert outcome.state == "failed" and "not cached" in outcome.error


def test_cache_evicts_least_recently_used() -> None:
    modules = [wat2wasm(IDENTITY_I32.replace("local.get 0", f"i32.const {i}")) for i in range(3)]
    with Executor(concurrency=1, cache_size=2) as ex:
        for wasm in modules:
            ex.execute(request(wasm))
        assert [ex.has_module(module_hash(w)) for w in modules] == [False, True, True]


def test_hash_mismatch_fails_without_running(executor: Executor) -> None:
    wasm = HASH_WASM.read_bytes()
    outcome = executor.execute(
        RunRequest(
            task_id="t", module_hash="f" * 64, wasm=wasm, input=0, difficulty=3, time_limit=0
        )
    )
    assert outcome.state == "failed"
    assert "do not match" in outcome.error
    assert executor.compiled_count == 0


def test_invalid_module_fails_with_reason(executor: Executor) -> None:
    outcome = executor.execute(request(b"not wasm at all"))
    assert (outcome.state, outcome.error) == ("failed", "not a WebAssembly module (bad magic)")
    no_export = executor.execute(request(wat2wasm("(module)")))
    assert no_export.state == "failed" and "neither run" in no_export.error


def test_two_runs_on_two_slots_overlap_in_time() -> None:
    wasm = HASH_WASM.read_bytes()

    async def both(ex: Executor) -> list[RunOutcome]:
        return await asyncio.gather(
            ex.run(request(wasm, 0, 5, task_id="a")), ex.run(request(wasm, 1, 5, task_id="b"))
        )

    with Executor(concurrency=2) as ex:
        ex.execute(request(wasm, 0, 1))  # compile outside the measured runs
        a, b = asyncio.run(both(ex))
    assert a.state == b.state == "succeeded"
    assert max(a.started_at, b.started_at) < min(a.finished_at, b.finished_at)


def test_close_is_idempotent() -> None:
    ex = Executor(concurrency=1)
    ex.close()
    ex.close()


def test_a_run_waiting_for_a_thread_can_be_cancelled() -> None:
    """With one thread busy, a second run queued behind it is cancelled
    before it starts: it ends `cancelled` without running."""
    import asyncio

    busy = wat2wasm(
        '(module (func (export "run") (param i64 i64) (result i64)'
        " (loop $l (br $l)) (i64.const 0)))"
    )
    noop = wat2wasm('(module (func (export "run") (param i64 i64) (result i64) (i64.const 7)))')

    async def scenario(executor: Executor) -> tuple[RunOutcome, RunOutcome]:
        first = asyncio.ensure_future(
            executor.run(RunRequest("t", module_hash(busy), busy, 0, 0, 5.0, run_key="t#0"))
        )
        second = asyncio.ensure_future(
            executor.run(RunRequest("t", module_hash(noop), noop, 0, 0, 5.0, run_key="t#1"))
        )
        await asyncio.sleep(0.2)
        assert executor.cancel("t#1")  # queued, not yet running
        assert executor.cancel("t#0")  # running
        return await first, await second

    with Executor(concurrency=1) as executor:
        running, queued = asyncio.run(scenario(executor))
    assert running.state == "cancelled" and "while running" in running.error
    assert queued.state == "cancelled" and "before it started" in queued.error
    assert not executor.cancel("t#0")  # nothing left to cancel


def test_a_run_sent_ahead_starts_on_its_due_time_not_before() -> None:
    import time as clock

    noop = wat2wasm('(module (func (export "run") (param i64 i64) (result i64) (i64.const 1)))')
    due = clock.time() + 0.2
    with Executor(concurrency=1) as executor:
        outcome = executor.execute(
            RunRequest("t", module_hash(noop), noop, 0, 0, 5.0, run_key="t#0", not_before=due)
        )
    assert outcome.state == "succeeded"
    assert outcome.started_at >= due  # never early
    assert outcome.started_at - due < 0.05  # and about on time


NOOP = """
(module (func (export "run") (param i64 i64) (result i64) (i64.add (local.get 0) (local.get 1))))
"""
# Counts down from `n` (the second argument): ~10 ms per few million rounds.
COUNT_DOWN = """
(module (func (export "run") (param i64 i64) (result i64)
  (block (loop
    (br_if 1 (i64.eqz (local.get 1)))
    (local.set 1 (i64.sub (local.get 1) (i64.const 1)))
    (br 0)))
  (local.get 0)))
"""


def test_a_run_of_a_kind_seen_to_be_tiny_runs_on_the_calling_thread(executor: Executor) -> None:
    noop = request(wat2wasm(NOOP), 2, 3)

    async def twice() -> list[RunOutcome]:
        # On the pool: the first compiles the module (not counted as run
        # time), the second shows how long the kind takes.
        first = await executor.run_many([noop]) + await executor.run_many([noop])
        assert executor.inline_count == 0
        return first + await executor.run_many([noop])

    outcomes = asyncio.run(twice())
    assert [o.result for o in outcomes] == ["5", "5", "5"]
    assert executor.inline_count == 1


def test_a_tiny_run_due_later_waits_on_the_pool_not_on_the_caller(executor: Executor) -> None:
    noop = request(wat2wasm(NOOP), 2, 3)
    asyncio.run(executor.run_many([noop]))
    asyncio.run(executor.run_many([noop]))
    due = time.time() + 0.05
    [outcome] = asyncio.run(executor.run_many([replace(noop, not_before=due)]))
    assert outcome.result == "5" and outcome.started_at >= due
    assert executor.inline_count == 0


def test_a_run_wrongly_taken_for_tiny_is_run_again_on_the_pool(executor: Executor) -> None:
    slow = request(wat2wasm(COUNT_DOWN), 7, 200_000_000, time_limit=10.0)
    executor.execute(replace(slow, difficulty=1))  # compiled and cached
    kind = (slow.module_hash, slow.input, slow.difficulty)
    executor._run_times.learn(kind, 0.0001)  # as if it had been tiny before
    [outcome] = asyncio.run(executor.run_many([slow]))
    assert outcome.state == "succeeded" and outcome.result == "7"
    assert outcome.finished_at - outcome.started_at > INLINE_BUDGET
    assert executor.inline_count == 0
    assert (executor._run_times.typical(kind) or 0) > INLINE_BELOW  # learnt: not tiny


# -- blocking host calls, output and compile bounds (issue 15) -----------------

HOUR_MS = 3_600_000
CLOCK_FIRED = 0x0107  # SLEEP_MS_IN_RUN's answer when its clock fired as wasmtime's does


def finished_within(call: Callable[[], RunOutcome], seconds: float = 30.0) -> RunOutcome:
    """`call()` on a thread, awaited at most `seconds` (a generous liveness
    bound, not a timing assertion): an unbounded host call fails the test
    instead of hanging the suite."""
    box: list[RunOutcome] = []
    thread = threading.Thread(target=lambda: box.append(call()), daemon=True)
    thread.start()
    thread.join(seconds)
    assert box, f"the run did not end within {seconds} s"
    return box[0]


def test_poll_oneoff_clock_in_run_ends_at_the_time_limit(executor: Executor) -> None:
    outcome = finished_within(
        lambda: run_wat(executor, hostile.SLEEP_MS_IN_RUN, HOUR_MS, 0, time_limit=0.3)
    )
    assert (outcome.state, outcome.error) == ("timed_out", "time limit of 0.3 s exceeded")


def test_poll_oneoff_clock_in_start_ends_at_the_time_limit(executor: Executor) -> None:
    outcome = finished_within(
        lambda: run_wat(executor, hostile.SLEEP_AN_HOUR_IN_START, time_limit=0.3)
    )
    assert (outcome.state, outcome.error) == ("timed_out", "time limit of 0.3 s exceeded")
    assert outcome.result == ""  # it never woke to print


def test_poll_oneoff_clock_is_ended_by_cancel() -> None:
    wasm = wat2wasm(hostile.SLEEP_MS_IN_RUN)

    async def scenario(executor: Executor) -> RunOutcome:
        run = asyncio.ensure_future(
            executor.run(RunRequest("t", module_hash(wasm), wasm, HOUR_MS, 0, 60.0, run_key="t#0"))
        )
        await asyncio.sleep(0.3)  # inside poll_oneoff by now
        assert executor.cancel("t#0")
        return await asyncio.wait_for(run, 30)

    with Executor(concurrency=1) as executor:
        outcome = asyncio.run(scenario(executor))
    assert (outcome.state, outcome.error) == ("cancelled", "cancelled while running")


def test_poll_oneoff_short_clock_fires_as_wasmtimes_does(executor: Executor) -> None:
    outcome = run_wat(executor, hostile.SLEEP_MS_IN_RUN, 20, 0, time_limit=10)
    assert (outcome.state, outcome.result) == ("succeeded", str(CLOCK_FIRED))


def test_poll_oneoff_on_empty_stdin_answers_at_once(executor: Executor) -> None:
    outcome = finished_within(
        lambda: run_wat(executor, hostile.POLL_STDIN_OR_AN_HOUR, 0, 0, time_limit=60)
    )
    assert (outcome.state, outcome.result) == ("succeeded", str(0x0105))


def test_wasi_command_reading_stdin_sees_end_of_file(executor: Executor) -> None:
    outcome = finished_within(
        lambda: run_wat(executor, hostile.READ_STDIN_UNTIL_EOF, time_limit=60)
    )
    assert (outcome.state, outcome.result) == ("succeeded", "eof\n")


def test_endless_stderr_times_out_with_bounded_error(executor: Executor) -> None:
    outcome = run_wat(executor, hostile.ENDLESS_STDERR, time_limit=0.3)
    assert (outcome.state, outcome.error) == ("timed_out", "time limit of 0.3 s exceeded")


def test_output_that_is_not_utf8_is_capped_in_bytes() -> None:
    # 4096 bytes of 0xff kept from stdout: not text, so they go back as
    # bytes, cut to the result limit (what is sent, not what was kept).
    with Executor(concurrency=1, output_limit=4096, result_limit=1000) as executor:
        outcome = run_wat(executor, hostile.INVALID_UTF8_STDOUT)
    assert outcome.state == "succeeded"
    assert (outcome.result, outcome.result_bytes) == ("", b"\xff" * 1000)
    assert outcome.result_truncated


def test_result_is_capped_in_utf8_bytes() -> None:
    # 4096 bytes of text kept from stdout, sent within 1000 bytes, marked.
    with Executor(concurrency=1, output_limit=4096, result_limit=1000) as executor:
        outcome = run_wat(executor, HUGE_STDOUT)
    assert outcome.state == "succeeded"
    assert len(outcome.result.encode()) <= 1000
    assert outcome.result.endswith(TRUNCATED_MARKER) and outcome.result_truncated


def test_error_is_capped_in_utf8_bytes() -> None:
    wat = EXIT_3_WITH_STDERR.replace("boom: bad input\\n", "é" * 8)
    with Executor(concurrency=1, result_limit=40) as executor:
        outcome = run_wat(executor, wat)
    assert outcome.state == "failed" and outcome.exit_code == 3
    assert len(outcome.error.encode()) <= 40
    assert outcome.error.startswith("exit code 3; stderr: ")


def test_compiling_counts_against_the_run_time_limit(executor: Executor) -> None:
    wasm = hostile.many_functions(300_000)  # about a second to compile on one core
    outcome = finished_within(lambda: executor.execute(request(wasm, time_limit=0.05)), seconds=60)
    assert outcome.state == "timed_out"
    assert outcome.error == "time limit of 0.05 s exceeded while compiling the module"
    assert not executor.has_module(module_hash(wasm))
    # The executor goes on: a fresh compile child serves the next module.
    assert run_wat(executor, IDENTITY_I32, 5, 0).result == "5"


def test_compiling_is_bounded_in_memory() -> None:
    wasm = hostile.many_functions(300_000)  # ~1.6 GB to compile
    with Executor(concurrency=1, compile_memory_limit=256 * 1024 * 1024) as executor:
        outcome = executor.execute(request(wasm, time_limit=60))
        assert outcome.state == "failed"
        assert outcome.error == "module too complex: compiling needed over 256 MiB"
        assert run_wat(executor, IDENTITY_I32, 5, 0).result == "5"


def test_cancel_ends_a_run_whose_module_is_compiling() -> None:
    wasm = hostile.many_functions(300_000)

    async def scenario(executor: Executor) -> RunOutcome:
        run = asyncio.ensure_future(
            executor.run(RunRequest("t", module_hash(wasm), wasm, 0, 0, 60.0, run_key="t#0"))
        )
        await asyncio.sleep(0.2)
        assert executor.cancel("t#0")
        return await asyncio.wait_for(run, 30)

    with Executor(concurrency=1) as executor:
        outcome = asyncio.run(scenario(executor))
    assert (outcome.state, outcome.error) == ("cancelled", "cancelled while compiling the module")
