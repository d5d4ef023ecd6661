"""The domain's settings: uploads and runs, the REST API, the scheduler.

Read once by ``wwproject/settings.py`` (``settings.WW_TASKS``); see
``tasks_app/settings_spec.py`` for how a field becomes ``WW_<NAME>``.
"""

from __future__ import annotations

from dataclasses import dataclass

from tasks_app.settings_spec import KIB, MIB, Choice, EnvSettings, setting


class WriteAuth(Choice):
    """Whether REST writes need a token (``WW_WRITES_NEED_AUTH``)."""

    AUTO = "auto"  # only where the HTTP server is bound to a non-loopback address
    TRUE = "true"
    FALSE = "false"

    @classmethod
    def _missing_(cls, value: object) -> WriteAuth | None:
        # The boolean words every other setting takes mean the same here.
        text = str(value).strip().lower()
        if text in ("1", "yes", "on"):
            return cls.TRUE
        if text in ("0", "no", "off"):
            return cls.FALSE
        return super()._missing_(value)


@dataclass(frozen=True)
class TasksSettings(EnvSettings):
    # -- the gateway's HTTP address, and the CLI that talks to it
    http: str = setting(
        "127.0.0.1:8080", "the gateway's HTTP address, host:port (`rungateway --http`)"
    )
    url: str = setting("", "the gateway's base URL for `submit` and `tasks`; empty: http://WW_HTTP")
    token: str = setting(
        "", "API token `submit` and `tasks` send (`manage.py issuetoken`)", secret=True
    )

    # -- uploads and runs
    module_max_bytes: int = setting(
        16 * MIB,
        "largest module accepted (413 past it); a request body may be 1 MiB more",
        unit="bytes",
    )
    module_max_functions: int = setting(
        100_000, "functions a module may define; more are refused at upload, before compiling"
    )
    module_compile_seconds: float = setting(
        5.0,
        "wall-clock time the gateway's check of an uploaded module may spend compiling it",
        unit="s",
    )
    module_compile_bytes: int = setting(
        512 * MIB,
        "address space of the child process that compiles a module (gateway and workers)",
        unit="bytes",
    )
    default_duration: float = setting(60.0, "a run's time limit when its task gives none", unit="s")
    max_duration: float = setting(
        24 * 3600.0, "the longest time limit a task may ask for", unit="s"
    )
    max_repeats: int = setting(100_000, "the most runs one task may have")
    max_offset: float = setting(
        366 * 24 * 3600.0, "the largest `start` and `delay` a task may ask for", unit="s"
    )

    # -- what a JSON task may give its run (POST /tasks, POST /tasks/batch)
    task_max_args: int = setting(256, "strings a task's `args` may hold")
    task_args_max_bytes: int = setting(
        64 * KIB, "bytes (UTF-8) a task's `args` may hold together", unit="bytes"
    )
    task_max_env: int = setting(128, "variables a task's `env` may hold")
    task_env_max_bytes: int = setting(
        64 * KIB, "bytes (UTF-8) of a task's `env` names and values together", unit="bytes"
    )
    task_stdin_max_bytes: int = setting(MIB, "bytes a task's `stdin` may hold", unit="bytes")
    batch_max_tasks: int = setting(10_000, "tasks one POST /tasks/batch may hold")
    batch_max_bytes: int = setting(
        16 * MIB, "largest POST /tasks/batch body (413 past it)", unit="bytes"
    )
    idempotency_hours: float = setting(
        24.0, "hours an Idempotency-Key's first answer is kept at least (then purged)"
    )
    idempotency_max_keys: int = setting(
        100_000, "Idempotency-Keys kept at once; a new one past it is a 503 (Retry-After)"
    )
    wait_max_waiters: int = setting(
        10_000, "GET /tasks/<id>?wait= requests waiting at once; one more is a 503 (Retry-After)"
    )
    wait_recheck_seconds: float = setting(
        5.0,
        "a waiting request reads its task again at least this often (events may be missed)",
        unit="s",
    )

    # -- schedules (tasks_app/fire_times.py, tasks_app/firing.py)
    schedule_min_every: float = setting(
        0.1, "the shortest `every` a schedule may have (each firing is a task)", unit="s"
    )

    # -- who may do what (tasks_app/api/permissions.py, origin.py). For
    # `auto`, `rungateway` tells the permission rule its --http host at start;
    # a server started otherwise (bind unknown) counts as public. The admin
    # always needs a staff login.
    writes_need_auth: WriteAuth = setting(  # noqa: RUF009 - setting() makes the field
        WriteAuth.AUTO,
        "whether POST/PUT/PATCH/DELETE need a token: auto (only when the HTTP server is not "
        "bound to loopback), true or false; production settings default to true",
    )
    reads_need_auth: bool = setting(False, "whether GET needs a token too")
    fast_lane: bool = setting(True, "plain POST /tasks answered on the event loop (api/lane.py)")
    trusted_origins: tuple[str, ...] = setting(
        (),
        "comma-separated origins (scheme://host[:port], `*.` wildcards) whose pages may "
        "write besides the gateway's own",
    )

    # -- live events (tasks_app/events.py, the channel layer)
    event_text_bytes: int = setting(
        256, "bytes of a run's result or error an event carries (the rest: GET /tasks/<id>)"
    )
    channel_capacity: int = setting(
        100_000, "messages a channel holds (a dropped notification only delays runs)"
    )
    ws_queue_messages: int = setting(
        256, "event batches that may wait on the layer for a websocket before it is closed (4008)"
    )

    # -- the scheduler (tasks_app/scheduler.py, tasks_app/policy.py). Prefetch
    # lets a slot go straight from one run to the next instead of idling for a
    # round trip; only for short runs, since queued long runs only add lateness.
    # The window bounds memory and start-up time, not the backlog.
    max_attempts: int = setting(3, "attempts per run when workers vanish, then `failed`")
    worker_max_faults: int = setting(
        3, "malformed outcomes from a worker before it is disconnected and refused"
    )
    call_grace: float = setting(
        30.0, "a call on a worker is given up this long after its runs' time limits", unit="s"
    )
    queue_window: int = setting(
        10_000, "runs the scheduler holds in memory; the rest wait in the database"
    )
    prefetch: int = setting(
        64,
        "due runs a worker may hold queued per slot beyond its concurrency (like Celery's "
        "prefetch), for runs seen to take under WW_PREFETCH_BELOW; 0: off",
    )
    prefetch_below: float = setting(
        0.05, "runs shorter than this may be prefetched, about this much of them per slot", unit="s"
    )
    batch: int = setting(64, "such short runs travel up to this many to a call")
    batch_seconds: float = setting(
        0.005, "and about this many seconds of them (a call's results come back together)", unit="s"
    )
    send_ahead: float = setting(
        0.02,
        "runs go to their worker this early and start there on their due time "
        "(clocks assumed in sync)",
        unit="s",
    )

    @property
    def request_body_max_bytes(self) -> int:
        """The largest request body taken: a module of the largest size plus
        its form (413 past it, before the body is read)."""
        return self.module_max_bytes + MIB
