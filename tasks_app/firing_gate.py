"""The scheduler's side of schedules: when a firing's run is due (popped from
the run queue like any run, sent ahead like any run), decide what it does
(tasks_app.fire_times.overlap_verdict) and have the schedule's next firing
made (tasks_app.firing.advance).

- run: it goes to its worker with the batch it was popped in;
- wait (buffer_one, or a catch-up firing): held here until the schedule's
  running firing ends, then queued again;
- skip: its run ends `cancelled` with the reason, never executed.

"The previous firing is running" is what this scheduler is running, or
what the rows say (a firing another gateway runs). Only runs whose task id
looks like a firing's (`<name>@...`) cost a read, one per batch, made in the
batch's own dispatch task (the scheduler's timer is not held up)."""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime
from typing import Any

from asgiref.sync import sync_to_async
from django.utils import timezone

from tasks_app import events, fire_times, firing, metrics
from tasks_app.fire_times import Overlap, Verdict
from tasks_app.firing import DueFiring
from tasks_app.selectors import DueRun

log = logging.getLogger("ww.schedules")

_ADVANCE_TRIES = 5
_ADVANCE_RETRY = 0.5  # s between tries to make the next firing (a busy database)
_REMEMBER = 10_000  # decided run ids remembered (a sweep may bring one back)

Push = Callable[[DueRun], None]
Own = Callable[..., None]  # (coroutine, name=...): a background task the scheduler owns


class FiringGate:
    def __init__(self, push: Push, own: Own, dispatching: dict[int, Any]) -> None:
        self._push = push  # queue a run again
        self._own = own
        # The scheduler's runs being dispatched: a held or skipped one leaves it.
        self._dispatching = dispatching
        self._running: dict[int, set[int]] = {}  # schedule id -> run ids admitted here
        self._schedule_of: dict[int, int] = {}  # admitted run id -> schedule id
        self._waiting: dict[int, deque[DueRun]] = {}
        self._decided: dict[int, None] = {}  # skipped or held run ids (ordered: oldest first)
        self._ended: dict[str, None] = {}  # firings' task ids ended here lately

    async def admit(self, runs: list[DueRun]) -> list[DueRun]:
        """The runs of `runs` that go to their worker now."""
        unknown = [
            r
            for r in runs
            if "@" in r.task_id
            and r.iteration_id not in self._schedule_of
            and fire_times.parse_firing_id(r.task_id) is not None
        ]
        if not unknown:
            return runs
        try:
            found = await sync_to_async(firing.due_firings)([r.task_id for r in unknown])
        except Exception:  # a firing is run rather than lost for a failed read
            log.exception("could not read the schedules of %d firings; run them", len(unknown))
            return runs
        keep: list[DueRun] = []
        for run in runs:
            due = found.get(run.task_id)
            if due is None or run.iteration_id in self._schedule_of:
                keep.append(run)  # not a firing, or one admitted before (a retry)
            elif run.iteration_id not in self._decided and self._decide(run, due):
                keep.append(run)
            else:  # held or skipped (now, or before and a sweep brought it back)
                self._dispatching.pop(run.iteration_id, None)
        return keep

    def _decide(self, run: DueRun, due: DueFiring) -> bool:
        sid = due.schedule_id
        running = self._running.get(sid, set())
        elsewhere = due.running - self._ended.keys()  # not those that ended here
        previous = bool(running - {run.iteration_id}) or bool(elsewhere)
        waiting = self._waiting.setdefault(sid, deque())
        if due.paused and due.regular:
            verdict, reason = Verdict.SKIP, "skipped: the schedule is paused"
        else:
            verdict = fire_times.overlap_verdict(
                due.overlap,
                previous_running=previous,
                waiting=len(waiting),
                catching_up=due.catching_up,
            )
            reason = {
                Verdict.RUN: "",
                Verdict.WAIT: "waits for the schedule's previous firing to end",
                Verdict.SKIP: "skipped: the schedule's previous firing was still running"
                + (" and one waits already" if due.overlap is Overlap.BUFFER_ONE else ""),
            }[verdict]
        if due.fire_at == due.head:
            self._own(self._advance(sid, due.fire_at), name=f"advance-{due.name}")
        self._announce(due, run, verdict, reason)
        metrics.firing_decided(verdict)
        if verdict is Verdict.RUN:
            self._admitted(sid, run)
            return True
        self._remember(run.iteration_id)
        if verdict is Verdict.WAIT:
            waiting.append(run)
            log.info("firing %s waits for the previous firing of %s", run.task_id, due.name)
        else:
            log.info("firing %s %s", run.task_id, reason)
            metrics.fire_times_skipped("paused" if due.paused and due.regular else "overlap")
            self._own(self._skip(run.task_id, reason), name=f"skip-{run.task_id}")
        return False

    def _admitted(self, sid: int, run: DueRun) -> None:
        self._running.setdefault(sid, set()).add(run.iteration_id)
        self._schedule_of[run.iteration_id] = sid

    def ended(self, run: DueRun) -> None:
        """A run ended for good (not to be retried): a firing of it ending
        lets the one waiting behind it go."""
        sid = self._schedule_of.pop(run.iteration_id, None)
        if sid is None:
            return
        self._ended[run.task_id] = None
        while len(self._ended) > _REMEMBER:
            self._ended.pop(next(iter(self._ended)))
        running = self._running.get(sid, set())
        running.discard(run.iteration_id)
        waiting = self._waiting.get(sid)
        if not running:
            self._running.pop(sid, None)
        if waiting and not running:
            # Queued again and decided afresh when popped (a task cancelled
            # meanwhile is dropped by the scheduler, and holds nothing here).
            following = waiting.popleft()
            self._decided.pop(following.iteration_id, None)
            self._push(replace(following, due_at=max(following.due_at, timezone.now())))
        elif not waiting:
            self._waiting.pop(sid, None)

    def _remember(self, iteration_id: int) -> None:
        self._decided[iteration_id] = None
        while len(self._decided) > _REMEMBER:
            self._decided.pop(next(iter(self._decided)))

    async def _advance(self, schedule_id: int, decided: datetime) -> None:
        for attempt in range(1, _ADVANCE_TRIES + 1):
            try:
                await sync_to_async(firing.advance)(schedule_id, decided)
                return
            except Exception:  # noqa: BLE001 - tried again; a restart's catch-up is the last resort
                log.warning("schedule %s: next firing not made (try %d)", schedule_id, attempt)
                await asyncio.sleep(_ADVANCE_RETRY)
        log.error("schedule %s: next firing not made; a gateway start catches up", schedule_id)

    async def _skip(self, task_id: str, reason: str) -> None:
        try:
            await sync_to_async(firing.skip)(task_id, reason)
        except Exception:
            log.exception("could not record firing %s as skipped", task_id)

    def _announce(self, due: DueFiring, run: DueRun, verdict: Verdict, reason: str) -> None:
        event = events.firing_event(
            schedule=due.name,
            task_id=run.task_id,
            fire_at=due.fire_at,
            decision=str(verdict),
            reason=reason,
            at=timezone.now(),
        )
        self._own(_publish(event), name="firing-event")


async def _publish(event: dict[str, Any]) -> None:
    try:
        await events.publish_runs([event])
    except Exception:  # watchers are best effort; the rows are the truth
        log.exception("could not publish a firing event")
