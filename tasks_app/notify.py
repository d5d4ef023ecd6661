"""Tell the gateway's scheduler about new and cancelled tasks, through the
channel layer (in process by default, Redis in the scale-out configuration).

A submission made in the gateway's own process hands its runs straight to
the scheduler's event loop instead, without waiting: the request goes on to
its response while the runs are dispatched."""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer

from tasks_app import policy
from tasks_app.selectors import DueRun

log = logging.getLogger("ww.tasks")

GATEWAY_CHANNEL = "ww.gateway"


# A submission with up to this many runs carries them to the scheduler, which
# then queues them without reading them back from the database.
RUNS_IN_MESSAGE = 1000

AddRuns = Callable[[list[DueRun]], None]
CancelRuns = Callable[[str], object]

# How long a cancel waits for this process's scheduler to drop the task's
# queued runs before it goes by the channel layer instead.
_CANCEL_WAIT = 2.0


def _no_cancel(task_id: str) -> object:
    return None


@dataclass(frozen=True)
class _Local:
    """The scheduler of the gateway running in this process: its loop and
    the functions (called on that loop) that queue new runs and stop a
    task's runs."""

    loop: asyncio.AbstractEventLoop
    add_runs: AddRuns
    cancel_runs: CancelRuns


_local: _Local | None = None


def serve_locally(
    loop: asyncio.AbstractEventLoop, add_runs: AddRuns, cancel_runs: CancelRuns = _no_cancel
) -> None:
    """Submissions in this process go to `add_runs` on `loop` from now on,
    cancellations to `cancel_runs`."""
    global _local
    _local = _Local(loop, add_runs, cancel_runs)


def stop_serving_locally() -> None:
    global _local
    _local = None


def task_submitted(task_id: str, runs: Sequence[DueRun] = ()) -> None:
    """New runs are waiting (a new task, or runs queued again). From a
    thread (a request's, a command's)."""
    local = _local
    if local is not None and 0 < len(runs) <= RUNS_IN_MESSAGE:
        try:
            local.loop.call_soon_threadsafe(local.add_runs, list(runs))
            return
        except RuntimeError:  # that loop has closed (the gateway is stopping)
            pass  # the layer, then; the runs are stored either way
    _send(_submitted(task_id, runs))


async def task_submitted_here(task_id: str, runs: Sequence[DueRun] = ()) -> None:
    """`task_submitted`, from code running on an event loop: the runs go
    straight to the scheduler when it runs on this very loop."""
    local = _local
    if (
        local is not None
        and local.loop is asyncio.get_running_loop()
        and 0 < len(runs) <= RUNS_IN_MESSAGE
    ):
        local.add_runs(list(runs))
        return
    layer = get_channel_layer()
    if layer is None:
        return
    try:
        await layer.send(GATEWAY_CHANNEL, _submitted(task_id, runs))
    except Exception:  # the gateway also sweeps the database for due runs
        log.exception("could not tell the gateway about task %s", task_id)


def _submitted(task_id: str, runs: Sequence[DueRun]) -> dict[str, Any]:
    message: dict[str, Any] = {"type": "task.submitted", "task": task_id}
    if 0 < len(runs) <= RUNS_IN_MESSAGE:
        message["runs"] = [run_to_message(run) for run in runs]
    return message


# Event-loop turns from a submission's runs reaching the scheduler to the
# first one's call being on the wire: the scheduler wakes, the dispatch task
# starts, Cap'n Proto's event loop flushes (each a callback scheduled by the
# one before).
_DISPATCH_TURNS = 3


async def dispatch_turns() -> None:
    """Let the runs just handed to this loop's scheduler go to their workers
    before the caller goes on (a request about to write its response).

    A run due now takes a few loop turns to reach its worker; a response
    ready at the same moment would otherwise be written first, and the run
    would wait for it (~0.25 ms). The client waiting for the run's result
    needs both; the run is the one with further to go. An idle loop passes
    the turns in microseconds."""
    for _ in range(_DISPATCH_TURNS):
        await asyncio.sleep(0)


def task_cancelled(task_id: str) -> None:
    """None of the task's runs may start from now on, and its running ones
    must be interrupted. From a thread; called while the cancellation's
    transaction still holds the task, so that no run of it is handed out
    between the database saying `cancelled` and the scheduler knowing.

    The scheduler of this process (if one runs here) has dropped the
    task's queued runs when this returns; any other gateway hears it by
    the channel layer."""
    local = _local
    if local is not None and _cancel_here(local, task_id):
        return
    _send({"type": "task.cancelled", "task": task_id})


def _cancel_here(local: _Local, task_id: str) -> bool:
    """Run `cancel_runs` on the scheduler's loop and wait for it. False if
    that loop did not take it in time (closed, or stuck)."""
    done = threading.Event()

    def cancel() -> None:
        try:
            local.cancel_runs(task_id)
        finally:
            done.set()

    try:
        running = asyncio.get_running_loop()
    except RuntimeError:
        running = None
    if running is local.loop:  # called on the scheduler's own loop
        cancel()
        return True
    try:
        local.loop.call_soon_threadsafe(cancel)
    except RuntimeError:  # that loop has closed (the gateway is stopping)
        return False
    if done.wait(_CANCEL_WAIT):
        return True
    log.warning("the scheduler did not take the cancel of %s in time; sent it instead", task_id)
    return False


def run_to_message(run: DueRun) -> list[Any]:
    """A run as channel layers carry it (msgpack over Redis: plain values).
    Its priority and route follow only when they are not the defaults."""
    fields: list[Any] = [
        run.iteration_id,
        run.task_id,
        run.index,
        run.due_at.timestamp(),
        run.module_hash,
        run.input,
        run.difficulty,
        run.duration,
        run.retries,
        run.attempts,
    ]
    if run.priority or run.route != policy.DEFAULT_ROUTE:
        fields += [run.priority, run.route.queue, [list(pair) for pair in run.route.constraints]]
    return fields


def run_from_message(fields: list[Any]) -> DueRun:
    iteration_id, task_id, index, due, module, input, difficulty, duration, retries, attempts = (
        fields[:10]
    )
    priority, route = 0, policy.DEFAULT_ROUTE
    if len(fields) >= 13:
        priority = int(fields[10])
        route = policy.route_of(str(fields[11]), {str(k): str(v) for k, v in fields[12]})
    return DueRun(
        iteration_id=int(iteration_id),
        task_id=str(task_id),
        index=int(index),
        due_at=datetime.fromtimestamp(float(due), tz=UTC),
        module_hash=str(module),
        input=int(input),
        difficulty=int(difficulty),
        duration=float(duration),
        retries=int(retries),
        attempts=int(attempts),
        priority=priority,
        route=route,
    )


def _send(message: dict[str, Any]) -> None:
    layer = get_channel_layer()
    if layer is None:
        return
    try:
        async_to_sync(layer.send)(GATEWAY_CHANNEL, message)
    except Exception:  # the gateway also loads due runs when it starts
        log.exception("could not tell the gateway %s", message)
