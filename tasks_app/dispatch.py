"""How the scheduler reaches a worker, in the domain's terms: a `Job` is one
attempt of one run; a `WorkerLink` runs jobs and answers `WorkerOutcome`s.
The cluster side implements it over Cap'n Proto (cluster_app.worker_link);
the scheduler never sees a wire name."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from tasks_app.outcomes import WorkerOutcome


@dataclass(frozen=True)
class Job:
    """One attempt of one run, as a worker is asked to run it."""

    task_id: str
    index: int
    module_hash: str  # the worker fetches the bytes once, by hash
    input: int
    difficulty: int
    time_limit: float  # seconds
    not_before: datetime  # its due time: sent early, it starts then
    # What a WASI command is given besides (tasks_app.job_inputs): argv
    # after argv[0] (None: the seed's [input, difficulty]), the whole of its
    # stdin, and its environment, exactly.
    args: tuple[str, ...] | None = None
    stdin: bytes = b""
    env: tuple[tuple[str, str], ...] = ()


class WorkerGone(Exception):
    """The worker's connection is gone (not the run's fault)."""


class WorkerLink(Protocol):
    async def run(self, jobs: Sequence[Job]) -> list[WorkerOutcome]:
        """Run `jobs` in one call; outcome i is job i's. Raises WorkerGone
        when the connection is lost, MalformedAnswer when the answer is
        not one an honest worker gives."""
        ...

    async def cancel(self, task_id: str, index: int) -> bool:
        """Interrupt that run if the worker holds it; whether it did."""
        ...

    async def ping(self) -> None: ...
