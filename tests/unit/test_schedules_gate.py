"""tasks_app/firing_gate.py without a database (the schedule's rows are
stubbed): what a due firing does under each overlap policy, a paused
schedule, a catch-up, and that deciding the chain's head asks for the next
firing once."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tasks_app import fire_times, firing
from tasks_app.fire_times import Overlap
from tasks_app.firing import DueFiring
from tasks_app.firing_gate import FiringGate
from tasks_app.selectors import DueRun

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def run_at(k: int, name: str = "s") -> DueRun:
    at = T0 + timedelta(seconds=k)
    return DueRun(
        iteration_id=100 + k,
        task_id=fire_times.firing_id(name, at),
        index=0,
        due_at=at,
        module_hash="ab" * 32,
        input=0,
        difficulty=0,
        duration=5,
    )


class Rows:
    """The schedule's row as `due_firings` would read it."""

    def __init__(self, overlap: Overlap, *, paused: bool = False, catchup: int | None = None):
        self.overlap, self.paused = overlap, paused
        self.catchup_until = None if catchup is None else T0 + timedelta(seconds=catchup)
        self.head = T0
        self.running_elsewhere: set[str] = set()
        self.advanced: list[datetime] = []
        self.skipped: list[tuple[str, str]] = []

    def due_firings(self, task_ids: list[str]) -> dict[str, DueFiring]:
        found = {}
        for tid in task_ids:
            parsed = fire_times.parse_firing_id(tid)
            assert parsed is not None
            found[tid] = DueFiring(
                schedule_id=1,
                name=parsed[0],
                fire_at=parsed[1],
                overlap=self.overlap,
                paused=self.paused,
                head=self.head,
                catchup_until=self.catchup_until,
                running=frozenset(self.running_elsewhere),
            )
        return found

    def advance(self, schedule_id: int, decided: datetime) -> datetime | None:
        self.advanced.append(decided)
        self.head = decided + timedelta(seconds=1)
        return self.head

    def skip(self, task_id: str, reason: str) -> bool:
        self.skipped.append((task_id, reason))
        return True


@pytest.fixture
def published(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = []

    async def publish(changes: list[dict[str, Any]]) -> None:
        events.extend(changes)

    monkeypatch.setattr("tasks_app.events.publish_runs", publish)
    return events


def _gate(monkeypatch: pytest.MonkeyPatch, rows: Rows) -> tuple[FiringGate, list[DueRun], Any]:
    monkeypatch.setattr(firing, "due_firings", rows.due_firings)
    monkeypatch.setattr(firing, "advance", rows.advance)
    monkeypatch.setattr(firing, "skip", rows.skip)
    pushed: list[DueRun] = []
    background: list[asyncio.Task[None]] = []

    def own(coro: Coroutine[Any, Any, None], *, name: str) -> None:
        background.append(asyncio.get_running_loop().create_task(coro, name=name))

    async def settle() -> None:
        while background:
            await background.pop()

    return FiringGate(pushed.append, own, {}), pushed, settle


def test_skip_ends_a_firing_due_while_the_previous_runs(
    monkeypatch: pytest.MonkeyPatch, published: list[dict[str, Any]]
) -> None:
    rows = Rows(Overlap.SKIP)
    gate, _, settle = _gate(monkeypatch, rows)

    async def scenario() -> None:
        assert await gate.admit([run_at(0)]) == [run_at(0)]
        await settle()
        assert await gate.admit([run_at(1)]) == []  # the first still runs
        await settle()
        gate.ended(run_at(0))
        assert await gate.admit([run_at(2)]) == [run_at(2)]
        await settle()

    asyncio.run(scenario())
    assert rows.advanced == [T0 + timedelta(seconds=k) for k in range(3)]  # once each
    assert [tid for tid, _ in rows.skipped] == [run_at(1).task_id]
    assert "still running" in rows.skipped[0][1]
    decisions = [(e["task"], e["decision"]) for e in published]
    assert decisions == [
        (run_at(0).task_id, "run"),
        (run_at(1).task_id, "skip"),
        (run_at(2).task_id, "run"),
    ]
    assert all(e["type"] == "schedule.fired" and e["schedule"] == "s" for e in published)


def test_buffer_one_holds_one_and_skips_the_next(
    monkeypatch: pytest.MonkeyPatch, published: list[dict[str, Any]]
) -> None:
    rows = Rows(Overlap.BUFFER_ONE)
    gate, pushed, settle = _gate(monkeypatch, rows)

    async def scenario() -> None:
        assert await gate.admit([run_at(0)]) == [run_at(0)]
        assert await gate.admit([run_at(1)]) == []  # waits
        assert await gate.admit([run_at(2)]) == []  # one waits already: skipped
        assert await gate.admit([run_at(1)]) == []  # a sweep bringing it back: still held
        await settle()
        gate.ended(run_at(0))
        assert [r.iteration_id for r in pushed] == [run_at(1).iteration_id]
        assert await gate.admit(pushed) == pushed  # let go: it runs now
        await settle()

    asyncio.run(scenario())
    assert [tid for tid, _ in rows.skipped] == [run_at(2).task_id]


def test_allow_runs_them_side_by_side(monkeypatch: pytest.MonkeyPatch, published: Any) -> None:
    rows = Rows(Overlap.ALLOW)
    gate, _, settle = _gate(monkeypatch, rows)

    async def scenario() -> None:
        for k in range(3):
            assert await gate.admit([run_at(k)]) == [run_at(k)]
        await settle()

    asyncio.run(scenario())
    assert rows.skipped == []


def test_a_paused_schedules_firing_is_skipped(
    monkeypatch: pytest.MonkeyPatch, published: Any
) -> None:
    rows = Rows(Overlap.ALLOW, paused=True)
    gate, _, settle = _gate(monkeypatch, rows)

    async def scenario() -> None:
        assert await gate.admit([run_at(0)]) == []
        await settle()

    asyncio.run(scenario())
    assert rows.skipped[0][1] == "skipped: the schedule is paused"


def test_catch_up_firings_run_one_after_another_even_under_skip(
    monkeypatch: pytest.MonkeyPatch, published: Any
) -> None:
    rows = Rows(Overlap.SKIP, catchup=10)
    gate, pushed, settle = _gate(monkeypatch, rows)

    async def scenario() -> None:
        batch = [run_at(k) for k in (0, 1, 2)]
        assert await gate.admit(batch) == [run_at(0)]
        for k in (0, 1):
            gate.ended(run_at(k))
            assert pushed[-1].iteration_id == run_at(k + 1).iteration_id
            assert await gate.admit([pushed[-1]]) == [pushed[-1]]
        await settle()

    asyncio.run(scenario())
    assert rows.skipped == []


def test_runs_that_are_not_firings_pass_without_a_read(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_read(task_ids: list[str]) -> dict[str, DueFiring]:
        raise AssertionError("read")

    monkeypatch.setattr(firing, "due_firings", no_read)
    gate = FiringGate(lambda run: None, lambda coro, name: None, {})
    plain = DueRun(
        iteration_id=1,
        task_id="plain-task",
        index=0,
        due_at=T0,
        module_hash="ab" * 32,
        input=0,
        difficulty=0,
        duration=5,
    )
    assert asyncio.run(gate.admit([plain])) == [plain]


def test_a_firing_the_rows_say_runs_elsewhere_counts_until_it_ended_here(
    monkeypatch: pytest.MonkeyPatch, published: Any
) -> None:
    rows = Rows(Overlap.SKIP)
    gate, _, settle = _gate(monkeypatch, rows)

    async def scenario() -> None:
        rows.running_elsewhere = {"s@2025-12-31T23:59:59Z"}  # another gateway's
        assert await gate.admit([run_at(0)]) == []
        assert await gate.admit([run_at(1)]) == []
        rows.running_elsewhere = set()
        assert await gate.admit([run_at(2)]) == [run_at(2)]
        gate.ended(run_at(2))
        # The rows lag behind this gateway's journal: its own end counts.
        rows.running_elsewhere = {run_at(2).task_id}
        assert await gate.admit([run_at(3)]) == [run_at(3)]
        await settle()

    asyncio.run(scenario())
    assert [tid for tid, _ in rows.skipped] == [run_at(0).task_id, run_at(1).task_id]
