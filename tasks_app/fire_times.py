"""When a schedule fires, and what happens to a firing: pure functions (no
clock, no database), the arithmetic behind tasks_app/firing.py.

- Fire times: `every` seconds from an anchor, or a cron expression (5
  fields, or 6 with seconds first) read by `cronsim` in an IANA zone.
- DST: an expression at a fixed time of day (its minute and hour fields are
  not `*`-wildcards, as Debian cron decides) follows the wall clock: a wall
  time the clock skips fires once, at the first instant after the gap, the
  moment the clock jumps (02:30 in a zone that jumps 02:00 -> 03:00 fires at
  03:00:00; a zone whose offset changes by odd seconds jumps at odd wall
  times, and the firing follows the jump, not the next whole minute); a wall
  time the clock shows twice fires once, at its first occurrence. Any other expression
  (`*/5 * * * *`, `0 * * * *`) follows real time: it fires at every instant
  whose wall-clock reading matches, so an hourly job runs every real hour.
- Jitter: a firing's run is due up to `jitter` seconds after its fire time,
  by an offset taken from a hash of the firing's id (the same on every
  gateway and after a restart), and always before the next fire time.
- Catch-up: fire times missed while no gateway ran; overlap: a firing due
  while the previous one still runs.
"""

from __future__ import annotations

import enum
import hashlib
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from cronsim import CronSim, CronSimError

MICROSECOND = timedelta(microseconds=1)
# A cron expression is searched this far (wall-clock candidates) for the next
# fire time before it is taken to have none (cronsim itself gives up after 50
# years).
_MAX_CANDIDATES = 100_000
# A schedule's name: its firings' ids are `<name>@<fire time>`, so no `@`.
NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:+-]{0,99}$"
_FIRING_ID = re.compile(
    r"^(?P<name>[A-Za-z0-9][A-Za-z0-9._:+-]{0,99})@"
    r"(?P<at>\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d{6})?)Z$"
)


class InvalidTiming(ValueError):
    """A cron expression, zone or interval that cannot be a schedule's."""


class Overlap(enum.StrEnum):
    """What a firing due while the previous firing's run still runs does."""

    SKIP = "skip"  # it ends cancelled, with the reason
    BUFFER_ONE = "buffer_one"  # it waits for the previous to end (one waits at most)
    ALLOW = "allow"  # it runs beside it


class Verdict(enum.StrEnum):
    RUN = "run"
    WAIT = "wait"
    SKIP = "skip"


@dataclass(frozen=True)
class Timing:
    """When a schedule fires: `every` seconds from `anchor`, or `cron` in
    `zone`; never before `start_at`, never after `end_at`."""

    every: float | None = None
    cron: str | None = None
    zone: str = "UTC"
    anchor: datetime | None = None  # `every`'s first fire time
    start_at: datetime | None = None
    end_at: datetime | None = None


def zone_of(name: str) -> tzinfo:
    """The IANA zone `name` (InvalidTiming if there is none)."""
    if name in ("UTC", "Etc/UTC", "Z"):
        return UTC
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise InvalidTiming(f"no IANA time zone {name!r}") from exc


def check_cron(expr: str) -> str:
    """`expr` normalised (single spaces), or InvalidTiming saying why not."""
    fields = expr.split()
    if len(fields) not in (5, 6):
        raise InvalidTiming("a cron expression has 5 fields, or 6 with seconds first")
    try:
        it = CronSim(" ".join(fields), datetime(2000, 1, 1))
        next(it)
    except (CronSimError, ValueError, OverflowError) as exc:
        raise InvalidTiming(f"not a cron expression: {exc}") from None
    except StopIteration:
        raise InvalidTiming("this cron expression never fires") from None
    return " ".join(fields)


def check(timing: Timing) -> None:
    """InvalidTiming if `timing` cannot fire."""
    if (timing.every is None) == (timing.cron is None):
        raise InvalidTiming("give one of every (seconds) and cron")
    zone_of(timing.zone)
    if timing.cron is not None:
        check_cron(timing.cron)
    elif timing.every is not None and not timing.every > 0:
        raise InvalidTiming("every must be more than 0 seconds")
    if timing.start_at and timing.end_at and timing.end_at < timing.start_at:
        raise InvalidTiming("end_at is before start_at")


def _wall_clock(expr: str) -> bool:
    """Whether `expr` names a fixed time of day (follows the wall clock
    across DST) rather than a repetition in real time."""
    fields = expr.split()
    minute, hour = (fields[1], fields[2]) if len(fields) == 6 else (fields[0], fields[1])
    return not minute.startswith("*") and not hour.startswith("*")


def _real(naive: datetime, zone: tzinfo) -> datetime:
    """The instant a wall-clock time stands for: its first occurrence when
    the clock shows it twice; when the clock skips it, the instant the clock
    jumps over it (the first instant after the gap)."""
    first = naive.replace(tzinfo=zone, fold=0)
    later = first.astimezone(UTC)
    if later.astimezone(zone).replace(tzinfo=None) == naive:
        return later
    # In a gap. With the offset before the jump (fold=0) `naive` is an
    # instant after the jump; with the one after (fold=1), one before it.
    # The jump lies between: the first instant whose reading is past `naive`.
    earlier = naive.replace(tzinfo=zone, fold=1).astimezone(UTC)
    if not earlier < later:  # a zone that ignores fold: a day back is before any gap
        earlier = later - timedelta(days=1)
    while later - earlier > MICROSECOND:
        middle = earlier + (later - earlier) / 2
        if middle.astimezone(zone).replace(tzinfo=None) > naive:
            later = middle
        else:
            earlier = middle
    return later


def _cron_after(expr: str, zone: tzinfo, after: datetime) -> datetime | None:
    """The first fire time of `expr` in `zone` strictly after `after` (UTC)."""
    try:
        if zone is UTC or not _wall_clock(expr):
            # Real time: cronsim ticks in UTC and matches the zone's wall clock.
            it = CronSim(expr, after.astimezone(zone))
            return next(it).astimezone(UTC)
        # Wall clock: candidates in naive local time, each then made real.
        it = CronSim(expr, after.astimezone(zone).replace(tzinfo=None))
        for _ in range(_MAX_CANDIDATES):
            at = _real(next(it), zone)
            if at > after:
                return at
    except StopIteration:
        return None
    return None


def _every_after(every: float, anchor: datetime, after: datetime) -> datetime:
    step = max(round(every * 1_000_000), 1)
    if after < anchor:
        return anchor
    elapsed = (after - anchor) // MICROSECOND
    return anchor + timedelta(microseconds=(elapsed // step + 1) * step)


def next_fire(timing: Timing, after: datetime) -> datetime | None:
    """The first fire time strictly after `after` (UTC, aware), or None:
    past `end_at`, or never again."""
    if timing.start_at is not None and after < timing.start_at:
        after = timing.start_at - MICROSECOND
    try:
        if timing.cron is not None:
            at = _cron_after(timing.cron, zone_of(timing.zone), after)
        else:
            assert timing.every is not None and timing.anchor is not None
            at = _every_after(timing.every, timing.anchor, after)
    except (OverflowError, ValueError):  # past year 9999: no more fire times
        return None
    if at is None or (timing.end_at is not None and at > timing.end_at):
        return None
    return at


def fire_times(timing: Timing, after: datetime, count: int) -> list[datetime]:
    """The next `count` fire times after `after` (fewer if it ends)."""
    return list(_iter_fire(timing, after, count))


def _iter_fire(timing: Timing, after: datetime, most: int) -> Iterator[datetime]:
    at: datetime | None = after
    for _ in range(most):
        assert at is not None
        at = next_fire(timing, at)
        if at is None:
            return
        yield at


# -- a firing: its id, its run's due time --------------------------------------


def firing_id(name: str, fire_at: datetime) -> str:
    """`<name>@<fire time, UTC, ISO 8601 with seconds>` (microseconds too
    when the fire time has them: two firings never share an id)."""
    at = fire_at.astimezone(UTC)
    text = at.strftime("%Y-%m-%dT%H:%M:%S")
    if at.microsecond:
        text += f".{at.microsecond:06d}"
    return f"{name}@{text}Z"


def parse_firing_id(task_id: str) -> tuple[str, datetime] | None:
    """(schedule name, fire time) of a firing's id; None for any other id."""
    match = _FIRING_ID.match(task_id)
    if match is None:
        return None
    return match["name"], datetime.fromisoformat(match["at"]).replace(tzinfo=UTC)


def jitter_offset(task_id: str, *, jitter: float, room: float | None) -> timedelta:
    """How long after its fire time a firing's run is due: a fraction of
    `jitter` taken from a hash of its id, and less than `room` (the time to
    the next fire time), so runs stay in fire-time order."""
    bound = jitter if room is None else min(jitter, room)
    if bound <= 0:
        return timedelta(0)
    fraction = int.from_bytes(hashlib.sha256(task_id.encode()).digest()[:8], "big") / 2**64
    return timedelta(microseconds=int(fraction * bound * 1_000_000))


def due_at(timing: Timing, task_id: str, fire_at: datetime, *, jitter: float) -> datetime:
    """The due time of the run of the firing `task_id` at `fire_at`."""
    if jitter <= 0:
        return fire_at
    following = next_fire(timing, fire_at)
    room = None if following is None else (following - fire_at).total_seconds()
    return fire_at + jitter_offset(task_id, jitter=jitter, room=room)


# -- catch-up after the gateway was down ---------------------------------------


@dataclass(frozen=True)
class CatchUp:
    """What becomes of the fire times from the chain's head up to now."""

    run: list[datetime]  # run once each, now (younger than the catch-up window)
    skipped: int  # older: recorded as skipped
    skipped_exact: bool  # False: at least `skipped` (too many to count)
    first_skipped: datetime | None
    last_skipped: datetime | None
    head: datetime | None  # the next fire time after now: the new head (None: it ended)


def catch_up(
    timing: Timing,
    *,
    head: datetime,
    now: datetime,
    window: float,
    room: int | None = None,
    limit: int = 10_000,
) -> CatchUp:
    """Fire times in [head, now] (head is the first fire time not yet
    decided): those within `window` seconds of now run once each, older
    ones are skipped; at most `room` firings are made (max_runs). At most
    `limit` fire times are counted one by one."""
    cutoff = now - timedelta(seconds=max(window, 0))
    run: list[datetime] = []
    skipped, exact = 0, True
    first: datetime | None = None
    last: datetime | None = None
    at: datetime | None = head
    seen = 0
    while at is not None and at <= now:
        if at < cutoff:
            if seen >= limit:  # too many to count: jump to the window
                exact = False
                at = next_fire(timing, cutoff - MICROSECOND)
                continue
            skipped += 1
            first = first or at
            last = at
        else:
            run.append(at)
        seen += 1
        at = next_fire(timing, at)
    if room is not None:
        run = run[: max(room, 0)]
        if len(run) >= room:
            at = None
    return CatchUp(
        run=run,
        skipped=skipped,
        skipped_exact=exact,
        first_skipped=first,
        last_skipped=last,
        head=at,
    )


# -- overlap ---------------------------------------------------------------------


def overlap_verdict(
    policy: Overlap, *, previous_running: bool, waiting: int, catching_up: bool = False
) -> Verdict:
    """What a firing due now does. A firing made by catch-up never skips
    for overlap: each missed fire time runs once, one after another (or
    together, under `allow`)."""
    if not previous_running or policy is Overlap.ALLOW:
        return Verdict.RUN
    if catching_up:
        return Verdict.WAIT
    if policy is Overlap.BUFFER_ONE and waiting == 0:
        return Verdict.WAIT
    return Verdict.SKIP
