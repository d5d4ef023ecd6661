"""Writes and reads of schedules (REST, admin, CLI): a schedule stored with
its first firing made, changed, paused, resumed, triggered, deleted. The
firings themselves are tasks_app/firing.py's."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from tasks_app import fire_times, firing, services
from tasks_app.exceptions import InvalidField, TaskError
from tasks_app.models import Iteration, MissedFirings, Module, Schedule, Task

log = logging.getLogger("ww.schedules")

# What decides when a schedule fires: a change of any moves its next firing.
TIMING_FIELDS = ("every", "cron", "timezone", "start_at", "end_at", "max_runs", "jitter")
FIELDS = (*TIMING_FIELDS, "template", "overlap", "catchup_window", "paused", "module")


class ScheduleNotFound(TaskError):
    def __init__(self, name: str) -> None:
        super().__init__(f"no schedule named {name!r}")
        self.name = name


class ScheduleExists(TaskError):
    def __init__(self, name: str) -> None:
        super().__init__(f"a schedule named {name!r} exists already")
        self.name = name


def _check(schedule: Schedule) -> None:
    """InvalidField naming what cannot be."""
    if schedule.every is not None and schedule.cron:
        raise InvalidField("every", "give one of every (seconds) and cron, not both")
    if schedule.every is None and not schedule.cron:
        raise InvalidField("every", "give one of every (seconds) and cron")
    if schedule.every is not None and schedule.every < settings.WW_TASKS.schedule_min_every:
        least = settings.WW_TASKS.schedule_min_every
        raise InvalidField("every", f"at least {least} s (WW_SCHEDULE_MIN_EVERY)")
    if schedule.cron:
        try:
            schedule.cron = fire_times.check_cron(schedule.cron)
        except fire_times.InvalidTiming as exc:
            raise InvalidField("cron", str(exc)) from None
    try:
        fire_times.zone_of(schedule.timezone)
    except fire_times.InvalidTiming as exc:
        raise InvalidField("timezone", str(exc)) from None
    if schedule.start_at and schedule.end_at and schedule.end_at < schedule.start_at:
        raise InvalidField("end_at", "is before start_at")
    if schedule.jitter < 0:
        raise InvalidField("jitter", "must not be negative")
    if schedule.catchup_window < 0:
        raise InvalidField("catchup_window", "must not be negative")
    if schedule.overlap not in Schedule.Overlap.values:
        raise InvalidField("overlap", f"one of {', '.join(Schedule.Overlap.values)}")
    if not Module.objects.filter(pk=schedule.module_id).exists():
        raise InvalidField("module", "no stored module with this sha256 (POST /modules first)")


def create_schedule(*, name: str, **fields: Any) -> Schedule:
    """A new schedule, its first firing made (unless paused)."""
    schedule = Schedule(name=name, created_at=timezone.now(), **fields)
    _check(schedule)
    with transaction.atomic():
        if Schedule.objects.filter(name=name).exists():
            raise ScheduleExists(name)
        try:
            with transaction.atomic():
                schedule.save(force_insert=True)
        except IntegrityError:
            raise ScheduleExists(name) from None
        firing.start_chain(schedule)
    log.info("schedule %s stored; first firing at %s", name, schedule.next_fire_at)
    return schedule


def get_schedule(name: str) -> Schedule:
    schedule = Schedule.objects.filter(name=name).first()
    if schedule is None:
        raise ScheduleNotFound(name)
    return schedule


def update_schedule(name: str, **changes: Any) -> Schedule:
    """Change a schedule. Firings made later follow the change; the next
    firing, made already, keeps its task's fields, but is cancelled and made
    anew when the change moves it (a timing field) or the schedule is paused
    or resumed. Pausing stops the chain at the next fire time (that firing
    is skipped, recorded); resuming starts it again from now."""
    with transaction.atomic():
        schedule = get_schedule(name)
        before = {f: getattr(schedule, f) for f in FIELDS}
        for field, value in changes.items():
            if field == "module":
                schedule.module_id = value
            else:
                setattr(schedule, field, value)
        _check(schedule)
        schedule.save()
        moved = any(getattr(schedule, f) != before[f] for f in TIMING_FIELDS)
        if moved or schedule.paused != before["paused"]:
            _restart_chain(schedule, moved=moved)
    return schedule


def _restart_chain(schedule: Schedule, *, moved: bool) -> None:
    """The chain's head as the schedule now says. Paused: the head firing
    stays and is skipped when due (the chain stops there). Otherwise the
    head is kept while it is still to come and the schedule's timing did not
    move it; a moved head not started is cancelled and the next made."""
    if schedule.paused:
        return
    head = schedule.next_fire_at
    now = timezone.now()
    if head is not None and head > now:
        wanted = fire_times.next_fire(firing.timing_of(schedule), now)
        if not moved or head == wanted:
            return
        task_id = fire_times.firing_id(schedule.name, head)
        if Iteration.objects.filter(task_id=task_id, state=Iteration.State.PENDING).exists():
            services.cancel_task(task_id=task_id)  # the gateway drops its queued run
            schedule.fired_count = max(schedule.fired_count - 1, 0)
    firing.start_chain(schedule, now=now)


def delete_schedule(name: str) -> None:
    """Delete a schedule: its next firing, not started, is cancelled; the
    firings made keep their tasks (no longer tied to a schedule)."""
    with transaction.atomic():
        schedule = get_schedule(name)
        if schedule.next_fire_at is not None:
            task_id = fire_times.firing_id(schedule.name, schedule.next_fire_at)
            if Iteration.objects.filter(task_id=task_id, state=Iteration.State.PENDING).exists():
                services.cancel_task(task_id=task_id)
        schedule.delete()


def trigger_schedule(name: str) -> Task:
    """One firing now (besides the schedule's own fire times)."""
    schedule = get_schedule(name)
    try:
        return firing.trigger(schedule)
    except IntegrityError:
        raise InvalidField("name", "a firing at this very time exists; try again") from None


# -- reads --------------------------------------------------------------------


@dataclass(frozen=True)
class FiringRow:
    task_id: str
    fire_at: datetime | None
    due_at: datetime
    state: str
    error: str
    finished_at: datetime | None


def next_fire_times(schedule: Schedule, count: int = 5) -> list[datetime]:
    """The next `count` fire times from now (none while paused): the head
    first if it is still to come."""
    if schedule.paused:
        return []
    now = timezone.now()
    timing = firing.timing_of(schedule)
    room = firing.room_of(schedule)
    head = schedule.next_fire_at
    times: list[datetime] = []
    if head is not None and head >= now:
        times.append(head)
        room = None if room is None else room + 1  # the head is counted already
    after = times[-1] if times else now
    times += fire_times.fire_times(timing, after, count - len(times))
    return times[: count if room is None else min(count, room)]


def last_firings(schedule: Schedule, count: int = 10) -> list[FiringRow]:
    """The schedule's newest firings with their run's state."""
    runs = (
        Iteration.objects.filter(task__schedule=schedule)
        .order_by("-due_at")
        .values_list("task_id", "due_at", "state", "error", "finished_at")[:count]
    )
    rows = []
    for task_id, due, state, error, finished in runs:
        parsed = fire_times.parse_firing_id(task_id)
        rows.append(
            FiringRow(
                task_id=task_id,
                fire_at=parsed[1] if parsed else None,
                due_at=due,
                state=state,
                error=error,
                finished_at=finished,
            )
        )
    return rows


def missed(schedule: Schedule, count: int = 10) -> list[MissedFirings]:
    return list(schedule.missed.order_by("-first_fire_at")[:count])
