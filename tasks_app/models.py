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
    # The names the module exports (functions, memories, ...), read at upload.
    exports = models.JSONField(default=list, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"{self.sha256[:12]} ({self.size} bytes, {self.kind})"


class Schedule(models.Model):
    """A periodic task: `every` seconds or a `cron` expression in `timezone`.
    Each fire time makes one firing, an ordinary task (`Task.schedule`) with
    id `<name>@<fire time>` whose one run is due then (tasks_app/firing.py;
    the arithmetic in tasks_app/fire_times.py). The next firing is made
    ahead (`next_fire_at`), so it waits in the run queue like any run."""

    class Overlap(models.TextChoices):
        SKIP = "skip", "skip (the firing ends cancelled)"
        BUFFER_ONE = "buffer_one", "buffer one (waits for the previous)"
        ALLOW = "allow", "allow (runs beside it)"

    name = models.CharField(max_length=100, unique=True)
    module = models.ForeignKey(Module, on_delete=models.PROTECT, related_name="schedules")
    # Every firing's task fields (a JSON task object without id, module,
    # start, delay, repeats; stdin as stdin_base64), checked when saved.
    template = models.JSONField(default=dict, blank=True)
    every = models.FloatField(null=True, blank=True, help_text="Seconds between fire times")
    cron = models.CharField(
        max_length=200, blank=True, default="", help_text="5 fields, or 6 with seconds first"
    )
    timezone = models.CharField(max_length=64, default="UTC", help_text="IANA zone of `cron`")
    start_at = models.DateTimeField(null=True, blank=True)
    end_at = models.DateTimeField(null=True, blank=True)
    max_runs = models.PositiveIntegerField(null=True, blank=True)
    jitter = models.FloatField(default=0, help_text="A firing's run is due up to this late, s")
    overlap = models.CharField(max_length=16, choices=Overlap.choices, default=Overlap.SKIP)
    catchup_window = models.FloatField(
        default=60, help_text="Fire times missed while down and younger than this run once, s"
    )
    paused = models.BooleanField(default=False)
    created_at = models.DateTimeField()
    updated_at = models.DateTimeField(auto_now=True)
    # The chain of firings: the fire time of the firing made and not yet
    # decided (null: none, paused or ended); fire times up to `catchup_until`
    # were made by a catch-up after a restart.
    next_fire_at = models.DateTimeField(null=True, blank=True, editable=False)
    catchup_until = models.DateTimeField(null=True, blank=True, editable=False)
    fired_count = models.PositiveIntegerField(default=0, editable=False)
    skipped_count = models.PositiveBigIntegerField(default=0, editable=False)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class MissedFirings(models.Model):
    """Fire times that passed while no gateway ran and were older than the
    catch-up window when one started: not run, recorded (one row per gap)."""

    schedule = models.ForeignKey(Schedule, on_delete=models.CASCADE, related_name="missed")
    first_fire_at = models.DateTimeField()
    last_fire_at = models.DateTimeField()
    count = models.PositiveBigIntegerField()
    exact = models.BooleanField(default=True, help_text="False: at least `count`")
    recorded_at = models.DateTimeField()

    class Meta:
        ordering = ["-first_fire_at"]

    def __str__(self) -> str:
        return f"{self.schedule_id}: {self.count} missed from {self.first_fire_at}"


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
    # What a run is given beyond the seed's two integers (SPEC, "Second
    # contract"). A WASI command sees exactly `args` (after argv[0]), `stdin`
    # and `env`; null args means the seed's [input, difficulty].
    args = models.JSONField(
        null=True, blank=True, help_text="argv after argv[0] (null: input, difficulty)"
    )
    stdin = models.BinaryField(default=b"", blank=True)
    env = models.JSONField(default=dict, blank=True)
    # Where and in which order runs go (stored and validated now; given their
    # effect by the routing work: until then only the defaults are accepted).
    priority = models.SmallIntegerField(default=0)
    queue = models.CharField(max_length=100, default="default")
    constraints = models.JSONField(default=dict, blank=True)
    replicas = models.PositiveSmallIntegerField(default=1)
    fuel = models.PositiveBigIntegerField(null=True, blank=True)
    received_at = models.DateTimeField(db_index=True)
    cancelled_at = models.DateTimeField(null=True, blank=True)
    # Runs that succeeded, kept by the journal's writer as runs settle (a run
    # moves to succeeded once and never out of it), so progress is read
    # without counting a task's runs.
    succeeded_count = models.PositiveIntegerField(default=0, editable=False)
    # The schedule this task is a firing of (tasks_app/firing.py).
    schedule = models.ForeignKey(
        Schedule, on_delete=models.SET_NULL, null=True, blank=True, related_name="firings"
    )

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
    # The output when it is not UTF-8 text (then `result` is empty).
    result_bytes = models.BinaryField(null=True, blank=True)
    # Whether the output was cut to its limit (WW_RESULT_MAX_BYTES).
    result_truncated = models.BooleanField(default=False)
    stderr = models.TextField(blank=True, default="")
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


class IdempotencyKey(models.Model):
    """A POST made with an `Idempotency-Key` header: the same key with the
    same body answers what the first answered and stores nothing new; with
    another body, 409. Kept at least WW_IDEMPOTENCY_HOURS."""

    key = models.CharField(max_length=255)
    path = models.CharField(max_length=100)
    body_sha256 = models.CharField(max_length=64)
    status = models.PositiveSmallIntegerField()
    response = models.JSONField()
    created_at = models.DateTimeField(db_index=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["key", "path"], name="idempotency_unique_key"),
        ]

    def __str__(self) -> str:
        return f"{self.path} {self.key}"


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
    # What it serves, as it offered it (runworker --labels, --queues): runs
    # go only to a worker serving their task's queue and having every label
    # of its constraints.
    labels = models.JSONField(default=dict, blank=True)
    queues = models.JSONField(default=list, blank=True)
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
    result_bytes = models.BinaryField(null=True, blank=True)  # as the run's
    result_truncated = models.BooleanField(default=False)
    stderr = models.TextField(blank=True, default="")
    error = models.TextField(blank=True, default="")
    exit_code = models.IntegerField(null=True, blank=True)

    class Meta:
        ordering = ["iteration_id", "number"]
        constraints = [
            models.UniqueConstraint(fields=["iteration", "number"], name="attempt_unique_number"),
        ]

    def __str__(self) -> str:
        return f"{self.iteration} try {self.number}"
