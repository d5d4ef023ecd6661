"""GET /metrics: Prometheus text with the runs by state (counted in the
database at scrape time) and the histograms and gauges the gateway records.
(tests/cli checks the same page on a live gateway after real runs.)"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Coroutine
from datetime import timedelta
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone
from prometheus_client import Counter
from prometheus_client.parser import text_string_to_metric_families

import schema
from cluster_app.host import HostServer
from cluster_app.worker_link import read_outcome
from tasks_app import (
    fire_times,
    firing,
    metrics,
    run_records,
    schedule_services,
    services,
    worker_calls,
)
from tasks_app.dispatch import Job
from tasks_app.fire_times import Overlap
from tasks_app.firing import DueFiring
from tasks_app.firing_gate import FiringGate
from tasks_app.journal import Journal, RunEnded, RunSent
from tasks_app.models import Iteration, Module, Schedule, Task, WorkerNode
from tasks_app.modules import module_hash
from tasks_app.outcomes import WorkerOutcome
from tasks_app.pool import WorkerPool
from tasks_app.selectors import DueRun
from tests.api.forms import HASH_WASM
from workers.executor import Executor, RunRequest
from workers.server import _fill as fill_outcome

pytestmark = pytest.mark.django_db


def scrape(client: Client) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain; version=")
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(response.content.decode())
        for s in family.samples
    }


def test_runs_by_state_and_the_recorded_histograms(client: Client) -> None:
    services.create_task(
        task_id="m1",
        description="",
        wasm=HASH_WASM,
        duration=5,
        start=0,
        delay=0,
        repeats=3,
        input=0,
        difficulty=3,
    )
    WorkerNode.objects.create(peer_id="12D3KooWMetrics", last_seen=timezone.now())
    before = scrape(client)

    # Run 0 goes to a worker and succeeds; the gateway records it.
    run = Iteration.objects.get(task_id="m1", index=0)
    started = run.due_at + timedelta(milliseconds=20)
    finished = started + timedelta(milliseconds=300)
    run_records.record_runs(
        [
            RunSent(
                iteration_id=run.pk,
                task_id="m1",
                index=0,
                number=1,
                worker_peer_id="12D3KooWMetrics",
                sent_at=started,
            ),
            RunEnded(
                iteration_id=run.pk,
                task_id="m1",
                index=0,
                number=1,
                worker_peer_id="12D3KooWMetrics",
                outcome="succeeded",
                run_state="succeeded",
                result="2832",
                started_at=started,
                finished_at=finished,
            ),
        ]
    )
    metrics.observe_run(
        due_at=run.due_at, started_at=started, finished_at=finished, state="succeeded"
    )
    after = scrape(client)

    assert after[("ww_runs", (("state", "succeeded"),))] == 1
    assert after[("ww_runs", (("state", "pending"),))] == 2
    assert after[("ww_runs", (("state", "failed"),))] == 0
    lateness = "ww_dispatch_lateness_seconds"
    assert after[(f"{lateness}_count", ())] == before[(f"{lateness}_count", ())] + 1
    assert after[(f"{lateness}_bucket", (("le", "0.025"),))] == (
        before[(f"{lateness}_bucket", (("le", "0.025"),))] + 1
    )
    duration = ("ww_run_duration_seconds_count", (("state", "succeeded"),))
    assert after[duration] == before.get(duration, 0) + 1
    assert ("ww_workers_connected", ()) in after
    assert ("ww_queue_depth", ()) in after


# -- the metrics operators miss elsewhere --------------------------------------


def _value(samples: dict[Any, float], name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


class _Link:
    """A worker link answering with given outcomes, or failing."""

    def __init__(self, outcomes: list[WorkerOutcome] | Exception) -> None:
        self._outcomes = outcomes

    async def run(self, jobs: Any) -> list[WorkerOutcome]:
        if isinstance(self._outcomes, Exception):
            raise self._outcomes
        return self._outcomes

    async def cancel(self, task_id: str, index: int) -> bool:
        return False


def _job(index: int) -> Job:
    return Job(
        task_id="t",
        index=index,
        module_hash="ab" * 32,
        input=0,
        difficulty=0,
        time_limit=5.0,
        not_before=timezone.now(),
    )


def _outcome(state: str, *, compile_cached: bool | None = None) -> WorkerOutcome:
    now = timezone.now()
    return WorkerOutcome(
        state=state,
        result="",
        error="",
        exit_code=None,
        started_at=now,
        finished_at=now,
        compile_cached=compile_cached,
    )


def _call(peer_id: str, answer: list[WorkerOutcome] | Exception, jobs: int) -> None:
    async def main() -> None:
        worker = WorkerPool().add(
            peer_id=peer_id, address="a", concurrency=4, link=_Link(answer), connection=1
        )
        with contextlib.suppress(Exception):
            await worker_calls.call(worker, [_job(k) for k in range(jobs)], timeout=5)

    asyncio.run(main())


def test_a_workers_runs_and_failures_count_under_its_peer_id(client: Client) -> None:
    before = scrape(client)
    _call("12D3KooWRuns", [_outcome("succeeded"), _outcome("failed"), _outcome("succeeded")], 3)
    _call("12D3KooWRuns", TimeoutError("no answer"), 2)  # every job of the call lost
    _call("12D3KooWOther", [_outcome("timed_out")], 1)
    after = scrape(client)

    def moved(peer: str, outcome: str) -> float:
        key = {"worker": peer, "outcome": outcome}
        return _value(after, "ww_worker_runs_total", **key) - _value(
            before, "ww_worker_runs_total", **key
        )

    assert moved("12D3KooWRuns", "succeeded") == 2
    assert moved("12D3KooWRuns", "failed") == 1
    assert moved("12D3KooWRuns", "lost") == 2
    assert moved("12D3KooWOther", "timed_out") == 1
    assert moved("12D3KooWOther", "succeeded") == 0


def test_per_worker_series_are_bounded_the_least_lately_counted_dropped() -> None:
    runs = Counter("ww_test_runs", "test", ["worker", "outcome"], registry=None)
    fetches = Counter("ww_test_fetches", "test", ["worker"], registry=None)
    series = metrics.WorkerSeries(2, [runs, fetches])

    def workers() -> set[str]:
        return {
            s.labels["worker"]
            for counter in (runs, fetches)
            for family in counter.collect()
            for s in family.samples
        }

    for peer in ("a", "b"):
        series.child(runs, peer, "succeeded").inc()
        series.child(fetches, peer).inc()
    series.child(runs, "a", "failed").inc()  # "a" counted again: "b" is the oldest
    series.child(runs, "c", "succeeded").inc()
    assert workers() == {"a", "c"}
    assert len(series) == 2
    # "b" back: counted from zero again, in place of "a" now the oldest.
    series.child(runs, "b", "succeeded").inc()
    assert workers() == {"b", "c"}
    totals = {
        (s.labels["worker"], s.labels["outcome"]): s.value
        for family in runs.collect()
        for s in family.samples
        if s.name == "ww_test_runs_total"
    }
    assert totals == {("b", "succeeded"): 1, ("c", "succeeded"): 1}


def test_a_module_fetch_counts_under_the_fetching_peer(client: Client) -> None:
    async def modules(digest: str) -> bytes | None:
        return HASH_WASM

    async def leave(connection: int) -> None:
        pass

    async def fetch() -> bytes:
        host = HostServer(
            peer_id="gw", channels={}, connection=1, address="a", on_leave=leave, modules=modules
        )
        host.verified_peer = "12D3KooWFetcher"
        return await host.module(module_hash(HASH_WASM), None)

    key = {"worker": "12D3KooWFetcher"}
    before = _value(scrape(client), "ww_module_fetches_total", **key)
    assert asyncio.run(fetch()) == HASH_WASM
    assert _value(scrape(client), "ww_module_fetches_total", **key) == before + 1


def test_compile_cache_hits_travel_in_the_outcome_and_count_on_the_gateway(
    client: Client,
) -> None:
    """The worker's executor says whether a run found its module compiled;
    the Outcome carries it (compileCache); the gateway counts it."""
    with Executor(concurrency=1) as executor:
        request = RunRequest(
            task_id="c",
            module_hash=module_hash(HASH_WASM),
            wasm=HASH_WASM,
            input=0,
            difficulty=3,
            time_limit=10.0,
        )
        ran = [executor.execute(request) for _ in range(3)]
    assert [o.compile_cached for o in ran] == [False, True, True]
    answers = []
    for outcome in ran:
        message = schema.worker.Outcome.new_message()
        fill_outcome(message, outcome)
        with schema.worker.Outcome.from_bytes(message.to_bytes()) as reader:
            answers.append(read_outcome(reader, max_text_bytes=1024))
    assert [a.compile_cached for a in answers] == [False, True, True]
    before = scrape(client)
    _call("12D3KooWCompiler", answers, 3)
    _call("12D3KooWCompiler", [_outcome("failed")], 1)  # the worker did not say: not counted
    after = scrape(client)
    for result, n in (("hit", 2), ("miss", 1)):
        key = {"result": result}
        assert _value(after, "ww_compile_cache_total", **key) == (
            _value(before, "ww_compile_cache_total", **key) + n
        )


def test_a_journal_batch_written_observes_its_size_and_commit_time(client: Client) -> None:
    attempt = {"iteration_id": 1, "task_id": "j", "index": 0, "number": 1, "worker_peer_id": "w"}
    now = timezone.now()
    written: list[int] = []

    def write(batch: list[Any]) -> list[dict[str, Any]]:
        time.sleep(0.003)  # a commit that takes a few milliseconds
        written.append(len(batch))
        return []

    async def main() -> None:
        journal = Journal(write, linger=30.0)
        task = asyncio.create_task(journal.run())
        journal.append(RunSent(**attempt, sent_at=now))
        journal.append(RunEnded(**attempt, outcome="succeeded", run_state="succeeded"))
        while not written:
            await asyncio.sleep(0.001)
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)

    before = scrape(client)
    asyncio.run(main())
    after = scrape(client)
    assert written == [2]

    def moved(name: str, **labels: str) -> float:
        return _value(after, name, **labels) - _value(before, name, **labels)

    assert moved("ww_journal_batch_records_count") == 1
    assert moved("ww_journal_batch_records_sum") == 2
    assert moved("ww_journal_batch_records_bucket", le="1.0") == 0
    assert moved("ww_journal_batch_records_bucket", le="2.0") == 1
    assert moved("ww_journal_commit_seconds_count") == 1
    assert moved("ww_journal_commit_seconds_sum") >= 0.003
    assert moved("ww_journal_commit_seconds_bucket", le="0.002") == 0


def _schedule(**fields: Any) -> Schedule:
    Module.objects.get_or_create(
        sha256=module_hash(HASH_WASM),
        defaults={"wasm": HASH_WASM, "size": len(HASH_WASM), "kind": "run"},
    )
    return schedule_services.create_schedule(
        module_id=module_hash(HASH_WASM), template={}, **fields
    )


def test_a_firing_made_counts(client: Client, django_capture_on_commit_callbacks: Any) -> None:
    before = _value(scrape(client), "ww_schedule_firings_made_total")
    with django_capture_on_commit_callbacks(execute=True):
        schedule = _schedule(name="made", every=60.0)  # its first firing, the chain's head
    assert Task.objects.filter(schedule=schedule).count() == 1
    assert _value(scrape(client), "ww_schedule_firings_made_total") == before + 1
    with django_capture_on_commit_callbacks(execute=True):
        firing.trigger(schedule)
    assert _value(scrape(client), "ww_schedule_firings_made_total") == before + 2


def test_fire_times_missed_at_a_restart_count_as_skipped(
    client: Client, django_capture_on_commit_callbacks: Any
) -> None:
    """A gateway started after its schedule's catchup_window passed: the
    fire times older than it are skipped, counted as the schedule counts them."""
    past = timezone.now() - timedelta(seconds=10.5)
    schedule = _schedule(
        name="missed", every=1.0, catchup_window=0.0, start_at=past - timedelta(hours=1)
    )
    Task.objects.filter(schedule=schedule).delete()
    Schedule.objects.filter(pk=schedule.pk).update(next_fire_at=past)
    key = {"reason": "missed"}
    before = _value(scrape(client), "ww_schedule_fire_times_skipped_total", **key)
    with django_capture_on_commit_callbacks(execute=True):
        firing.catch_up_all()
    skipped = Schedule.objects.get(pk=schedule.pk).skipped_count
    assert skipped >= 10
    assert _value(scrape(client), "ww_schedule_fire_times_skipped_total", **key) == (
        before + skipped
    )


def test_firing_decisions_and_skipped_fire_times_count_in_the_gate(
    client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Under `skip`, a firing due while the previous runs is skipped
    (overlap); a paused schedule's regular firing is skipped (paused)."""
    t0 = timezone.now()
    paused = {"p": False}

    def due_firings(task_ids: list[str]) -> dict[str, DueFiring]:
        found = {}
        for task_id in task_ids:
            parsed = fire_times.parse_firing_id(task_id)
            assert parsed is not None
            found[task_id] = DueFiring(
                schedule_id=1,
                name=parsed[0],
                fire_at=parsed[1],
                overlap=Overlap.SKIP,
                paused=paused["p"],
                head=parsed[1] if paused["p"] else t0,  # a paused head: its regular firing
                catchup_until=None,
                running=frozenset(),
            )
        return found

    monkeypatch.setattr(firing, "due_firings", due_firings)
    monkeypatch.setattr(firing, "advance", lambda schedule_id, decided: None)
    monkeypatch.setattr(firing, "skip", lambda task_id, reason: True)

    async def no_publish(changes: list[dict[str, Any]]) -> None:
        pass

    monkeypatch.setattr("tasks_app.events.publish_runs", no_publish)

    def run_at(k: int) -> DueRun:
        at = t0 + timedelta(seconds=k)
        return DueRun(
            iteration_id=900 + k,
            task_id=fire_times.firing_id("gate", at),
            index=0,
            due_at=at,
            module_hash="ab" * 32,
            input=0,
            difficulty=0,
            duration=5,
        )

    async def scenario() -> None:
        background: list[asyncio.Task[None]] = []

        def own(coro: Coroutine[Any, Any, None], *, name: str) -> None:
            background.append(asyncio.get_running_loop().create_task(coro, name=name))

        gate = FiringGate(lambda run: None, own, {})
        assert await gate.admit([run_at(0)]) == [run_at(0)]
        assert await gate.admit([run_at(1)]) == []  # the first still runs: overlap
        gate.ended(run_at(0))
        paused["p"] = True
        assert await gate.admit([run_at(2)]) == []  # paused
        await asyncio.gather(*background)

    before = scrape(client)
    asyncio.run(scenario())
    after = scrape(client)

    def moved(name: str, **labels: str) -> float:
        return _value(after, name, **labels) - _value(before, name, **labels)

    decisions = "ww_schedule_firing_decisions_total"
    assert moved(decisions, decision="run") == 1
    assert moved(decisions, decision="skip") == 2
    assert moved(decisions, decision="wait") == 0
    skipped = "ww_schedule_fire_times_skipped_total"
    assert moved(skipped, reason="overlap") == 1
    assert moved(skipped, reason="paused") == 1
