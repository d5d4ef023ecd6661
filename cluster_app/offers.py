"""Whether a worker's offer is taken into the pool, and with how many
slots and which labels and queues: a pure decision on what the worker says
(its peer ID, its concurrency, what it serves) against what it proved and
what it did before (malformed answers counted against its peer ID). The
gateway asks the worker, then applies this."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from tasks_app.policy import DEFAULT_QUEUE


@dataclass(frozen=True)
class Admitted:
    concurrency: int
    capped_from: int | None = None  # the claim, when it was over the cap


@dataclass(frozen=True)
class Refused:
    reason: str


def judge_offer(
    *,
    says: str,
    proved: str,
    claimed_concurrency: int,
    max_concurrency: int,
    faults: int,
    max_faults: int,
) -> Admitted | Refused:
    if says != proved:
        return Refused(f"it says it is {says} but proved {proved}")
    if faults >= max_faults:
        return Refused(f"{proved} answered malformed outcomes {faults} times")
    # A member saying it runs 2**32 - 1 at once would draw every run.
    concurrency = max(1, min(claimed_concurrency, max(max_concurrency, 1)))
    capped = claimed_concurrency if concurrency != claimed_concurrency else None
    return Admitted(concurrency=concurrency, capped_from=capped)


# What a worker may say it serves (runworker --labels, --queues): bounded,
# so that a member offering 10**6 labels is refused before any is read.
MAX_LABELS = 64
MAX_QUEUES = 32
MAX_NAME_BYTES = 100  # a label's key, a queue's name (a task's queue is at most 100)
MAX_VALUE_BYTES = 200


@dataclass(frozen=True)
class Routing:
    labels: dict[str, str]
    queues: frozenset[str]


def judge_routing(*, labels: Sequence[tuple[str, str]], queues: Sequence[str]) -> Routing | Refused:
    """The labels and queues an offer claims, checked against the bounds
    (`labels` and `queues` may be lazy sequences: only their length is
    looked at before they are known to be within bounds). No queue means
    the default one."""
    if len(labels) > MAX_LABELS:
        return Refused(f"it offers {len(labels)} labels, over {MAX_LABELS}")
    if len(queues) > MAX_QUEUES:
        return Refused(f"it offers {len(queues)} queues, over {MAX_QUEUES}")
    found: dict[str, str] = {}
    for key, value in labels:
        if not key or len(key.encode()) > MAX_NAME_BYTES:
            return Refused(f"a label name of {len(key.encode())} bytes (1-{MAX_NAME_BYTES})")
        if len(value.encode()) > MAX_VALUE_BYTES:
            return Refused(f"label {key[:40]!r} has a value over {MAX_VALUE_BYTES} bytes")
        found[key] = value
    served = set()
    for queue in queues:
        if not queue or len(queue.encode()) > MAX_NAME_BYTES:
            return Refused(f"a queue name of {len(queue.encode())} bytes (1-{MAX_NAME_BYTES})")
        served.add(queue)
    return Routing(labels=found, queues=frozenset(served or {DEFAULT_QUEUE}))
