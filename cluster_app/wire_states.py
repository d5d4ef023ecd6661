"""Run states as the Outcome struct (schema/worker.capnp) spells them, and
back: the one map between the wire's names and the domain's, used by both
ends (the gateway's worker link reads them, the worker's server writes
them)."""

from __future__ import annotations

from tasks_app.models import Iteration

State = Iteration.State

STATES: dict[str, str] = {
    "succeeded": State.SUCCEEDED,
    "failed": State.FAILED,
    "timedOut": State.TIMED_OUT,
    "cancelled": State.CANCELLED,
}
WIRE_STATES: dict[str, str] = {state: wire for wire, state in STATES.items()}
