"""Tasks as rows: a task, its module (stored once per content hash), one row
per scheduled run (iteration) and one row per try of a run on a worker
(attempt). The schedule *is* these rows; the scheduler reads them."""

from __future__ import annotations

from django.db import models


class Module(models.Model):
    """A WebAssembly module, stored once per content (two tasks with the
    same bytes share it)."""

    class Kind(models.TextChoices):
        RUN = "run", "exports run(input, difficulty)"
        WASI = "wasi", "WASI command (_start)"

    sha256 = models.CharField(max_length=64, primary_key=True)
    wasm = models.BinaryField()
    size = models.PositiveIntegerField()
    kind = models.CharField(max_length=8, choices=Kind.choices)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"{self.sha256[:12]} ({self.size} bytes, {self.kind})"


class Task(models.Model):
    """A job as the seed's form describes it."""

    id = models.CharField(max_length=200, primary_key=True)
    description = models.TextField(blank=True, default="")
    module = models.ForeignKey(Module, on_delete=models.PROTECT, related_name="tasks")
    duration = models.FloatField(default=0, help_text="Time limit of one run, s (0: default)")
    start = models.FloatField(default=0, help_text="Seconds after receipt before run 0")
    delay = models.FloatField(default=0, help_text="Seconds between the starts of runs")
    repeats = models.PositiveIntegerField(default=1, help_text="Number of runs (0 means 1)")
    input = models.BigIntegerField(default=0)
    difficulty = models.BigIntegerField(default=0)
    retries = models.PositiveSmallIntegerField(
        default=0, help_text="Extra attempts for a run that traps or times out (0: none)"
    )
    received_at = models.DateTimeField(db_index=True)
    cancelled_at = models.DateTimeField(null=True, blank=True)
    # Runs that succeeded, kept by the journal's writer as runs settle (a run
    # moves to succeeded once and never out of it), so progress is read
    # without counting a task's runs.
    succeeded_count = models.PositiveIntegerField(default=0, editable=False)

    class Meta:
        ordering = ["received_at", "id"]

    def __str__(self) -> str:
        return self.id

    @property
    def run_count(self) -> int:
        return max(self.repeats, 1)


class Iteration(models.Model):
    """One scheduled run of a task: run k is due at receipt + start + k·delay."""

    class State(models.TextChoices):
        PENDING = "pending"
        RUNNING = "running"
        SUCCEEDED = "succeeded"
        FAILED = "failed"
        TIMED_OUT = "timed_out"
        CANCELLED = "cancelled"

    FINAL_STATES = (State.SUCCEEDED, State.FAILED, State.TIMED_OUT, State.CANCELLED)

    task = models.ForeignKey(Task, on_delete=models.CASCADE, related_name="iterations")
    index = models.PositiveIntegerField()
    due_at = models.DateTimeField()
    state = models.CharField(max_length=16, choices=State.choices, default=State.PENDING)
    result = models.TextField(blank=True, default="")
    error = models.TextField(blank=True, default="")
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["task_id", "index"]
        constraints = [
            models.UniqueConstraint(fields=["task", "index"], name="iteration_unique_index"),
        ]
        indexes = [
            models.Index(fields=["state", "due_at"], name="iteration_state_due"),
            # A task's runs in one state are a range of this index: counting
            # the few running or failed ones, or finding the next due, reads
            # that range only, never every run of a big task.
            models.Index(fields=["task", "state", "due_at"], name="iteration_task_state_due"),
        ]

    def __str__(self) -> str:
        return f"{self.task_id}#{self.index}"


class PendingCancellation(models.Model):
    """A cancelled task some of whose runs still say `pending`. A cancel
    turns only a first chunk of its runs `cancelled` (one UPDATE of 100,000
    runs took most of a second); the settler
    (services.settle_cancellations) turns the rest in short transactions
    and deletes this row when none is left, so a restart resumes it. No
    run of a cancelled task is ever dispatched meanwhile (the scheduler
    skips cancelled tasks), and every read shows those runs cancelled."""

    task = models.OneToOneField(
        Task, on_delete=models.CASCADE, primary_key=True, related_name="pending_cancellation"
    )

    def __str__(self) -> str:
        return f"{self.task_id} (cancelling)"


class WorkerNode(models.Model):
    """One worker peer the gateway has seen. The row outlives its
    connection, so history keeps pointing at it; `connected` says whether it
    is in the live pool now. (First defined in cluster_app, whose table it
    keeps.)"""

    peer_id = models.CharField(max_length=80, unique=True)
    address = models.CharField(max_length=100, blank=True, default="")
    concurrency = models.PositiveIntegerField(default=1)
    in_flight = models.PositiveIntegerField(default=0)
    completed = models.PositiveIntegerField(default=0)
    failed = models.PositiveIntegerField(default=0)
    connected = models.BooleanField(default=False)
    first_seen = models.DateTimeField(auto_now_add=True)
    last_seen = models.DateTimeField()

    class Meta:
        db_table = "cluster_app_workernode"
        ordering = ["-connected", "peer_id"]

    def __str__(self) -> str:
        return self.peer_id


class Attempt(models.Model):
    """One try of a run on one worker."""

    class Outcome(models.TextChoices):
        RUNNING = "running"
        SUCCEEDED = "succeeded"
        FAILED = "failed"
        TIMED_OUT = "timed_out"
        CANCELLED = "cancelled"
        LOST = "lost", "lost (worker went away)"

    iteration = models.ForeignKey(Iteration, on_delete=models.CASCADE, related_name="attempts")
    number = models.PositiveIntegerField()
    worker = models.ForeignKey(
        WorkerNode,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="attempts",
    )
    worker_peer_id = models.CharField(max_length=80, blank=True, default="")
    sent_at = models.DateTimeField()
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    outcome = models.CharField(max_length=16, choices=Outcome.choices, default=Outcome.RUNNING)
    result = models.TextField(blank=True, default="")
    error = models.TextField(blank=True, default="")
    exit_code = models.IntegerField(null=True, blank=True)

    class Meta:
        ordering = ["iteration_id", "number"]
        constraints = [
            models.UniqueConstraint(fields=["iteration", "number"], name="attempt_unique_number"),
        ]

    def __str__(self) -> str:
        return f"{self.iteration} try {self.number}"
