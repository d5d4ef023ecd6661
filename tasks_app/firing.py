"""A schedule's firings as rows: each fire time makes one ordinary task
(`<name>@<fire time>`, `Task.schedule` set) whose one run is due at the fire
time (plus its jitter), so it waits in the scheduler's run queue and is sent
ahead like any run. The task's primary key makes "one fire time, one task"
hold whatever crashes: a firing made twice is refused the second time.

The chain: a schedule's next firing is made ahead (`Schedule.next_fire_at`
is its fire time, the chain's head). When the scheduler decides the head
(runs it, holds it, skips it: tasks_app/firing_gate.py), `advance` makes the
one after; a compare-and-set on `next_fire_at` lets only one decision
advance it. After a restart, `catch_up_all` deals with the fire times that
passed meanwhile (tasks_app/fire_times.catch_up). The arithmetic is all in
tasks_app/fire_times.py; this module is its I/O."""

from __future__ import annotations

import base64
import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from django.db import IntegrityError, connection, transaction
from django.db.models import F, Q
from django.utils import timezone

from tasks_app import events, fire_times, notify, storage
from tasks_app.fire_times import Overlap, Timing
from tasks_app.models import Iteration, MissedFirings, Schedule, Task
from tasks_app.selectors import DueRun
from tasks_app.services import new_runs

log = logging.getLogger("ww.schedules")

State = Iteration.State
# Fire times with a firing decided already that a new chain passes over, at most.
_DECIDED_PASSED = 100


def anchor_of(schedule: Schedule) -> datetime:
    """Where an `every` schedule's fire times count from: its `start_at`,
    else the whole second after it was created."""
    if schedule.start_at is not None:
        return schedule.start_at
    created = schedule.created_at
    whole = created.replace(microsecond=0)
    return whole if whole == created else whole + timedelta(seconds=1)


def timing_of(schedule: Schedule) -> Timing:
    return Timing(
        every=schedule.every,
        cron=schedule.cron or None,
        zone=schedule.timezone,
        anchor=anchor_of(schedule),
        start_at=schedule.start_at,
        end_at=schedule.end_at,
    )


def room_of(schedule: Schedule) -> int | None:
    """Firings the schedule may still make (None: no max_runs)."""
    if schedule.max_runs is None:
        return None
    return max(schedule.max_runs - schedule.fired_count, 0)


def make_firing(schedule: Schedule, fire_at: datetime) -> DueRun | None:
    """The task of the firing at `fire_at` and its run, stored (inside the
    caller's transaction; the scheduler is told once it commits). None when
    that firing exists already."""
    task_id = fire_times.firing_id(schedule.name, fire_at)
    due = fire_times.due_at(timing_of(schedule), task_id, fire_at, jitter=schedule.jitter)
    now = timezone.now()
    received = min(now, due)
    t = schedule.template
    task = Task(
        id=task_id,
        description=t.get("description", ""),
        module_id=schedule.module_id,
        duration=t.get("duration", 0),
        start=(due - received).total_seconds(),
        delay=0,
        repeats=1,
        input=t.get("input", 0),
        difficulty=t.get("difficulty", 0),
        retries=t.get("retries", 0),
        args=t.get("args"),
        stdin=base64.b64decode(t.get("stdin_base64", "")),
        env=t.get("env", {}),
        priority=t.get("priority", 0),
        queue=t.get("queue", "default"),
        constraints=t.get("constraints", {}),
        replicas=t.get("replicas", 1),
        fuel=t.get("fuel"),
        received_at=received,
        schedule=schedule,
    )
    try:
        with transaction.atomic():
            task.save(force_insert=True)
            run = Iteration.objects.create(task=task, index=0, due_at=due)
    except IntegrityError:
        return None  # made already (another gateway, a retry): harmless
    runs = new_runs(task, [run.pk], [due])
    transaction.on_commit(lambda: notify.task_submitted(task.pk, runs))
    transaction.on_commit(_count_firing)
    return runs[0]


def _count_firing() -> None:
    # The metrics are imported when counted, not with this module: a worker
    # loads it (through the admin) and must not load the gateway's metrics.
    from tasks_app import metrics

    metrics.FIRINGS_MADE.inc()


def _count_skipped(reason: str, n: int) -> None:
    from tasks_app import metrics

    metrics.fire_times_skipped(reason, n)


def start_chain(schedule: Schedule, *, now: datetime | None = None) -> datetime | None:
    """Make the schedule's next firing after `now` its head (nothing when it
    is paused, ended, or out of max_runs). A fire time whose firing exists
    and was decided already (cancelled by a change, ended) is passed over:
    one fire time, one task. Inside the caller's transaction."""
    now = now or timezone.now()
    timing = timing_of(schedule)
    head = None if schedule.paused or room_of(schedule) == 0 else fire_times.next_fire(timing, now)
    for _ in range(_DECIDED_PASSED):
        if head is None or make_firing(schedule, head) is not None:
            if head is not None:
                schedule.fired_count += 1
            break
        task_id = fire_times.firing_id(schedule.name, head)
        if Iteration.objects.filter(task_id=task_id, state=State.PENDING).exists():
            break  # made already and still to run: it is the head
        head = fire_times.next_fire(timing, head)
    schedule.next_fire_at = head
    schedule.save(update_fields=["next_fire_at", "fired_count", "updated_at"])
    return head


def _schedule(schedule_id: int) -> Schedule | None:
    """The schedule's row, by a statement written out: a firing is handed
    out as often as every few milliseconds with many schedules, and the
    ORM's building of `filter(pk=...)` cost more than the read."""
    table = connection.ops.quote_name(Schedule._meta.db_table)
    pk = connection.ops.quote_name("id")
    found = list(Schedule.objects.raw(f"SELECT * FROM {table} WHERE {pk} = %s", [schedule_id]))
    return found[0] if found else None


def _move_head(schedule_id: int, decided: datetime, following: datetime | None) -> bool:
    """The compare-and-set of the chain's head, `decided` -> `following`,
    counting the firing about to be made (one statement; taken back in the
    rare case it exists already). Whether this call moved it."""
    q = connection.ops.quote_name
    adapt = connection.ops.adapt_datetimefield_value
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {q(Schedule._meta.db_table)} SET {q('next_fire_at')} = %s,"
            f" {q('fired_count')} = {q('fired_count')} + %s"
            f" WHERE {q('id')} = %s AND {q('next_fire_at')} = %s",
            [adapt(following), int(following is not None), schedule_id, adapt(decided)],
        )
        return bool(cursor.rowcount)


def advance(schedule_id: int, decided: datetime) -> datetime | None:
    """The firing at `decided` was decided: if it was the chain's head, make
    the next one (once, whoever else decides it too). Returns the new head."""
    with transaction.atomic():
        schedule = _schedule(schedule_id)
        if schedule is None or schedule.next_fire_at != decided:
            return None  # not the head (a trigger, a catch-up firing, or advanced already)
        room = room_of(schedule)
        following = None
        if not schedule.paused and room != 0:
            following = fire_times.next_fire(timing_of(schedule), decided)
        won = _move_head(schedule_id, decided, following)
        if not won or following is None:
            return None
        if make_firing(schedule, following) is None:
            Schedule.objects.filter(pk=schedule_id).update(fired_count=F("fired_count") - 1)
        return following


def trigger(schedule: Schedule) -> Task:
    """One firing now, outside the chain (it does not count for max_runs)."""
    with transaction.atomic():
        made = make_firing(schedule, timezone.now())
        if made is None:  # the same microsecond as a firing made already
            raise IntegrityError("a firing at this time exists")
        return Task.objects.get(pk=made.task_id)


# -- after a restart ----------------------------------------------------------


def catch_up_all(*, now: datetime | None = None) -> int:
    """Deal with the fire times that passed while no gateway ran, for every
    schedule not paused: those younger than its catch-up window run once
    each, older ones are recorded as skipped (MissedFirings, and the head's
    own task cancelled with the reason if it never started); the head moves
    to the next fire time after now. A schedule without a head gets one.
    Returns how many firings were made."""
    now = now or timezone.now()
    # A head still to come needs nothing: only the schedules without a head
    # or with one due are read (one query, not one transaction each).
    due = list(
        Schedule.objects.filter(paused=False).filter(
            Q(next_fire_at__isnull=True) | Q(next_fire_at__lte=now)
        )
    )
    left = _left_to_the_chain(due, now)
    made = 0
    for schedule in due:
        if schedule.pk in left:
            continue
        try:
            made += _catch_up(schedule.pk, now)
        except Exception:
            log.exception("catching up schedule %s failed", schedule.name)
    return made


def _left_to_the_chain(schedules: list[Schedule], now: datetime) -> set[int]:
    """Of these schedules, those whose only fire time passed is their head,
    young enough to run, its run still pending: it is queued like any late
    run and, once decided, `advance` makes the next firing, as a catch-up
    would have. After a short restart that is most of them; leaving them
    saves a transaction each before the gateway serves."""
    heads: dict[str, int] = {}
    for schedule in schedules:
        head = schedule.next_fire_at
        if head is None:
            continue
        plan = fire_times.catch_up(
            timing_of(schedule), head=head, now=now, window=schedule.catchup_window
        )
        if plan.run == [head] and plan.skipped == 0:
            heads[fire_times.firing_id(schedule.name, head)] = schedule.pk
    pending: set[int] = set()
    for ids in storage.chunks(list(heads), storage.ORM_IN_KEYS):
        pending.update(
            heads[task_id]
            for task_id in Iteration.objects.filter(
                task_id__in=ids, state=State.PENDING
            ).values_list("task_id", flat=True)
        )
    return pending


def repair_chains(*, grace: float = 5.0, now: datetime | None = None) -> int:
    """Schedules whose chain stopped while a gateway ran (the next firing
    not made after its head was decided: a database error through every
    retry, or the head's task cancelled by hand) are caught up as after a
    restart. A head merely late (its run still pending: no worker free) is
    left alone. Returns how many firings were made."""
    now = now or timezone.now()
    stalled = Schedule.objects.filter(
        paused=False, next_fire_at__lt=now - timedelta(seconds=grace)
    ).values_list("pk", "name", "next_fire_at")
    made = 0
    for schedule_id, name, head in stalled:
        assert head is not None  # filtered on
        task_id = fire_times.firing_id(name, head)
        if Iteration.objects.filter(task_id=task_id, state=State.PENDING).exists():
            continue
        try:
            made += _catch_up(schedule_id, now)
        except Exception:
            log.exception("repairing schedule %s failed", name)
    return made


def _catch_up(schedule_id: int, now: datetime) -> int:
    with transaction.atomic():
        schedule = Schedule.objects.filter(pk=schedule_id, paused=False).first()
        if schedule is None:
            return 0
        head = schedule.next_fire_at
        if head is None:
            return 1 if start_chain(schedule, now=now) is not None else 0
        if head > now:
            return 0
        plan = fire_times.catch_up(
            timing_of(schedule), head=head, now=now, window=schedule.catchup_window
        )
        made = 0
        if head not in plan.run:
            _skip_pending(schedule, head, "missed: older than catchup_window at a gateway start")
        room = room_of(schedule)
        new_head = plan.head
        for at in plan.run:
            if at == head:
                continue
            if room is not None and room <= 0:
                new_head = None
                break
            if make_firing(schedule, at) is not None:
                made += 1
                schedule.fired_count += 1
                if room is not None:
                    room -= 1
        if room == 0:
            new_head = None
        skipped = plan.skipped - (0 if head in plan.run else 1)
        if skipped > 0:
            assert plan.first_skipped is not None and plan.last_skipped is not None
            # The head's own task records it: the gap starts after it.
            first = plan.first_skipped if head in plan.run else None
            first = first or fire_times.next_fire(timing_of(schedule), head) or head
            MissedFirings.objects.create(
                schedule=schedule,
                first_fire_at=first,
                last_fire_at=plan.last_skipped,
                count=skipped,
                exact=plan.skipped_exact,
                recorded_at=now,
            )
        schedule.skipped_count += plan.skipped  # the head's own included
        transaction.on_commit(lambda: _count_skipped("missed", plan.skipped))
        schedule.catchup_until = now
        schedule.next_fire_at = new_head
        if new_head is not None and make_firing(schedule, new_head) is not None:
            made += 1
            schedule.fired_count += 1
        schedule.save()
        ran = [at for at in plan.run if at != head]
        if ran or plan.skipped:  # not for the next head alone
            log.warning(
                "schedule %s: %d missed fire times run now, %d skipped (older than %gs)",
                schedule.name,
                len(ran),
                plan.skipped,
                schedule.catchup_window,
            )
        return made


def _skip_pending(schedule: Schedule, fire_at: datetime, reason: str) -> None:
    """The firing at `fire_at`, if its run never started: cancelled, with
    the reason."""
    task_id = fire_times.firing_id(schedule.name, fire_at)
    skip(task_id, reason)


def skip(task_id: str, reason: str) -> bool:
    """A firing's run that has not started ends `cancelled` with `reason`
    (it is never executed); whether it did."""
    now = timezone.now()
    with transaction.atomic():
        changed = Iteration.objects.filter(
            task_id=task_id, state=State.PENDING, attempts__isnull=True
        ).update(state=State.CANCELLED, error=reason, finished_at=now)
        if changed:
            events.runs_changed(
                [
                    events.run_event(
                        task_id=task_id,
                        index=0,
                        state=str(State.CANCELLED),
                        worker="",
                        attempt=0,
                        result="",
                        error=reason,
                        completions=0,
                        at=now,
                    )
                ]
            )
    return bool(changed)


# -- what the scheduler reads when a firing is due ------------------------------


@dataclass(frozen=True)
class DueFiring:
    """A due firing's schedule as it is now."""

    schedule_id: int
    name: str
    fire_at: datetime
    overlap: Overlap
    paused: bool
    head: datetime | None
    catchup_until: datetime | None
    # The schedule's other firings whose runs the rows say are running (the
    # journal writes an end moments after it: the gate knows its own ends).
    running: frozenset[str]

    @property
    def regular(self) -> bool:
        """Made by the chain (not a trigger): the head or a catch-up firing."""
        return self.fire_at == self.head or self.catching_up

    @property
    def catching_up(self) -> bool:
        return self.catchup_until is not None and self.fire_at <= self.catchup_until


def due_firings(task_ids: list[str]) -> dict[str, DueFiring]:
    """Of these tasks, the firings, each with its schedule's state. Two
    statements written out (the gate asks once per batch, and with many
    schedules a batch is mostly one firing: building the ORM's queries cost
    more than running them)."""
    if not task_ids:
        return {}
    q = connection.ops.quote_name
    task, schedule, run = (q(m._meta.db_table) for m in (Task, Schedule, Iteration))
    marks = ", ".join(["%s"] * len(task_ids))
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT t.{q('id')}, s.{q('id')}, s.{q('name')}, s.{q('overlap')},"
            f" s.{q('paused')}, s.{q('next_fire_at')}, s.{q('catchup_until')}"
            f" FROM {task} t JOIN {schedule} s ON s.{q('id')} = t.{q('schedule_id')}"
            f" WHERE t.{q('id')} IN ({marks})",
            task_ids,
        )
        rows = cursor.fetchall()
        schedules = sorted({row[1] for row in rows})
        running: dict[int, set[str]] = {}
        if schedules:
            cursor.execute(
                f"SELECT t.{q('schedule_id')}, t.{q('id')} FROM {run} i"
                f" JOIN {task} t ON t.{q('id')} = i.{q('task_id')}"
                f" WHERE i.{q('state')} = %s AND t.{q('schedule_id')} IN"
                f" ({', '.join(['%s'] * len(schedules))})",
                [str(State.RUNNING), *schedules],
            )
            for sid, tid in cursor.fetchall():
                running.setdefault(sid, set()).add(tid)
    found: dict[str, DueFiring] = {}
    for tid, sid, name, overlap, paused, head, until in rows:
        parsed = fire_times.parse_firing_id(tid)
        if parsed is None:
            continue
        found[tid] = DueFiring(
            schedule_id=sid,
            name=name,
            fire_at=parsed[1],
            overlap=Overlap(overlap),
            paused=bool(paused),
            head=_stored_datetime(head),
            catchup_until=_stored_datetime(until),
            running=frozenset(running.get(sid, set()) - {tid}),
        )
    return found


def _stored_datetime(value: datetime | str | None) -> datetime | None:
    """A datetime column as a written-out statement returns it: aware
    (PostgreSQL), or the UTC time naive or as text (SQLite)."""
    if value is None:
        return None
    at = value if isinstance(value, datetime) else datetime.fromisoformat(value)
    return at if at.tzinfo is not None else at.replace(tzinfo=UTC)
