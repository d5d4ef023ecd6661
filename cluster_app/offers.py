"""Whether a worker's offer is taken into the pool, and with how many
slots: a pure decision on what the worker says (its peer ID, its
concurrency) against what it proved and what it did before (malformed
answers counted against its peer ID). The gateway asks the worker, then
applies this."""

from __future__ import annotations

from dataclasses import dataclass


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
