"""Settings for ww-scheduler.

Every knob comes from an environment variable with a safe embedded default,
and is read here and nowhere else.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

import dj_database_url

BASE_DIR = Path(__file__).resolve().parent.parent


def _env_int(name: str, default: int) -> int:
    raw = os.environ.get(name, "")
    return int(raw) if raw.strip() else default


def _env_float(name: str, default: float) -> float:
    raw = os.environ.get(name, "")
    return float(raw) if raw.strip() else default


def _env_bool(name: str, default: bool) -> bool:
    raw = os.environ.get(name, "").strip().lower()
    if not raw:
        return default
    return raw in {"1", "true", "yes", "on"}


# Where a node keeps its state: the SQLite database, its identity key, the
# admin password made by `make run`.
STATE_DIR = Path(os.environ.get("WW_STATE_DIR", BASE_DIR / "var")).resolve()
STATE_DIR.mkdir(parents=True, exist_ok=True)


def _secret_key() -> str:
    if key := os.environ.get("DJANGO_SECRET_KEY"):
        return key
    path = STATE_DIR / "secret-key"
    if not path.exists():
        path.write_text(secrets.token_urlsafe(50))
        path.chmod(0o600)
    return path.read_text().strip()


SECRET_KEY = _secret_key()
DEBUG = _env_bool("DJANGO_DEBUG", False)
ALLOWED_HOSTS = [
    h.strip()
    for h in os.environ.get("DJANGO_ALLOWED_HOSTS", "localhost,127.0.0.1,[::1]").split(",")
    if h.strip()
]

INSTALLED_APPS = [
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    # Our apps come before channels: `runworker` is ours (Django gives a
    # command name to the first app in this list that has it).
    "tasks_app",
    "cluster_app",
    "workers",
    "rest_framework",
    "rest_framework.authtoken",  # API tokens for writes (manage.py issuetoken)
    "channels",
    "drf_spectacular",
    "drf_spectacular_sidecar",  # Swagger UI served from here, not from a CDN
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    # Unsafe methods from another origin's page: 403 (tasks_app/api/origin.py).
    "tasks_app.api.origin.RefuseCrossSiteWrites",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "wwproject.urls"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

WSGI_APPLICATION = "wwproject.wsgi.application"
ASGI_APPLICATION = "wwproject.asgi.application"
# What `rungateway` builds the application it serves with, given the
# gateway's runtime (cluster_app.gateway_process.GatewayRuntime).
ASGI_APPLICATION_FACTORY = "wwproject.asgi.make_application"

# The embedded default is SQLite in WAL mode next to the project;
# DATABASE_URL (postgres://...) is the scale-out configuration.
# Connections last across requests (seconds): HTTP requests run on a few
# long-lived threads (wwproject/asgi.py), each with its own connection, so a
# request does not pay for opening one (and, on SQLite, its PRAGMAs).
WW_DB_CONN_MAX_AGE = _env_int("WW_DB_CONN_MAX_AGE", 600)
DATABASES = {
    "default": dj_database_url.parse(
        os.environ.get("DATABASE_URL", f"sqlite:///{STATE_DIR / 'db.sqlite3'}"),
        conn_max_age=WW_DB_CONN_MAX_AGE,
        conn_health_checks=True,
    )
}
# Threads that run HTTP requests (Django's middleware and views). SQLite
# takes one writer at a time, and a waiting writer sleeps in steps of
# milliseconds, so a few threads are enough; more only wait for each other.
WW_HTTP_THREADS = _env_int("WW_HTTP_THREADS", 2)
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    DATABASES["default"]["OPTIONS"] = {
        "timeout": 30,
        "transaction_mode": "IMMEDIATE",
        "init_command": (
            "PRAGMA journal_mode=WAL;"
            "PRAGMA synchronous=NORMAL;"
            "PRAGMA busy_timeout=30000;"
            "PRAGMA foreign_keys=ON;"
        ),
    }

# A channel holds 100 messages by default: far too few for a burst of
# submissions (the scheduler also sweeps the database, so a dropped
# notification delays runs, never loses them).
CHANNEL_CAPACITY = _env_int("WW_CHANNEL_CAPACITY", 100_000)
# Websocket watchers (tasks_app/consumers.py, cluster_app/compat_daphne.py):
# sending waits while more than WW_WS_MAX_BUFFERED bytes wait unsent for the
# client; one is closed with code 4008 ("slow reader") when its backlog stays
# over that for WW_WS_STALL seconds, or WW_WS_QUEUE_MESSAGES event batches
# wait on the layer for its consumer; a closed client that does not finish
# the closing handshake within WW_WS_CLOSE_GRACE seconds is disconnected.
# An event carries at most WW_EVENT_TEXT_BYTES of a result or error (the
# rest: GET /tasks/<id>).
WW_WS_MAX_BUFFERED = _env_int("WW_WS_MAX_BUFFERED", 1024 * 1024)
WW_WS_STALL = _env_float("WW_WS_STALL", 5.0)
WW_WS_QUEUE_MESSAGES = _env_int("WW_WS_QUEUE_MESSAGES", 256)
WW_WS_CLOSE_GRACE = _env_float("WW_WS_CLOSE_GRACE", 10.0)
WW_EVENT_TEXT_BYTES = _env_int("WW_EVENT_TEXT_BYTES", 256)
CHANNEL_LAYERS = {
    "default": {
        "BACKEND": "tasks_app.compat_channels.LocalChannelLayer",
        "CONFIG": {"capacity": CHANNEL_CAPACITY, "member_capacity": WW_WS_QUEUE_MESSAGES},
    }
}
if redis_url := os.environ.get("REDIS_URL"):
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            # channels_redis waits for messages with BZPOPMIN for 5 s; redis-py 8
            # times socket reads out after 5 s by default, which would kill
            # every consumer mid-wait (channels_redis issue 422). A longer read
            # timeout still notices a dead connection.
            "CONFIG": {
                "hosts": [{"address": redis_url, "socket_timeout": 15}],
                "capacity": CHANNEL_CAPACITY,
            },
        }
    }

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
# Times to the second, one format on every page (wwproject/formats/en).
FORMAT_MODULE_PATH = ["wwproject.formats"]
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

REST_FRAMEWORK = {
    # JSON first: curl and scripts (Accept: */*) get JSON; a browser gets
    # DRF's browsable API.
    "DEFAULT_RENDERER_CLASSES": [
        "rest_framework.renderers.JSONRenderer",
        "rest_framework.renderers.BrowsableAPIRenderer",
    ],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_CONTENT_NEGOTIATION_CLASS": "tasks_app.api.negotiation.JSONFirstNegotiation",
    "DEFAULT_PARSER_CLASSES": [
        "rest_framework.parsers.MultiPartParser",
        "rest_framework.parsers.FormParser",
        "rest_framework.parsers.JSONParser",
    ],
    # Token first, so an anonymous request that needs a user gets a 401 with
    # `WWW-Authenticate: Token`. Session auth is for staff using the browsable
    # API; DRF enforces CSRF for session-authenticated requests only, so the
    # anonymous curl is unaffected. Who may do what: tasks_app/api/permissions.
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["tasks_app.api.permissions.TaskAPIPermission"],
    "UNAUTHENTICATED_USER": None,
    "EXCEPTION_HANDLER": "tasks_app.api.errors.exception_handler",
}

# OpenAPI 3 at /api/schema/, Swagger UI at /api/docs/ (assets from the
# sidecar app, so the docs work without reaching the internet).
SPECTACULAR_SETTINGS = {
    "TITLE": "ww-scheduler",
    "DESCRIPTION": "Submit WebAssembly jobs and follow their runs. Live run events: "
    "WebSocket /ws/tasks/ (every task) and /ws/tasks/{id}/ (one task).",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "COMPONENT_SPLIT_REQUEST": True,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
}

# --- ww-scheduler ---------------------------------------------------------

# Cluster namespace and addresses (the seed's flags; the commands' options
# override these).
WW_NS = os.environ.get("WW_NS", "ww")
WW_DISCOVER = os.environ.get("WW_DISCOVER", "/ip4/228.8.8.8/udp/8822/multicast/lo")
WW_LISTEN = os.environ.get("WW_LISTEN", "/ip4/127.0.0.1/tcp/0")
WW_ADDR = os.environ.get("WW_ADDR", "")
WW_HTTP = os.environ.get("WW_HTTP", "127.0.0.1:8080")
WW_IDENTITY_FILE = Path(os.environ.get("WW_IDENTITY_FILE", STATE_DIR / "identity.key"))
WW_CLUSTER_KEY_FILE = os.environ.get("WW_CLUSTER_KEY_FILE", "")

# Uploads and runs.
WW_MODULE_MAX_BYTES = _env_int("WW_MODULE_MAX_BYTES", 16 * 1024 * 1024)
WW_DEFAULT_DURATION = _env_float("WW_DEFAULT_DURATION", 60.0)
WW_MAX_DURATION = _env_float("WW_MAX_DURATION", 24 * 3600.0)
WW_MAX_REPEATS = _env_int("WW_MAX_REPEATS", 100_000)
WW_MAX_OFFSET = _env_float("WW_MAX_OFFSET", 366 * 24 * 3600.0)
WW_RUN_MEMORY_BYTES = _env_int("WW_RUN_MEMORY_BYTES", 256 * 1024 * 1024)
WW_RUN_OUTPUT_BYTES = _env_int("WW_RUN_OUTPUT_BYTES", 64 * 1024)
# UTF-8 bytes of a run's result (and of its error) a worker sends back: longer ones are cut, marked.
WW_RESULT_MAX_BYTES = _env_int("WW_RESULT_MAX_BYTES", 64 * 1024)
# Functions a module may define; more are refused at upload before compiling.
WW_MODULE_MAX_FUNCTIONS = _env_int("WW_MODULE_MAX_FUNCTIONS", 100_000)
# Wall-clock seconds the gateway's check of an uploaded module may spend compiling it.
WW_MODULE_COMPILE_SECONDS = _env_float("WW_MODULE_COMPILE_SECONDS", 5.0)
# Address space of the child process that compiles a module (gateway and workers).
WW_MODULE_COMPILE_BYTES = _env_int("WW_MODULE_COMPILE_BYTES", 512 * 1024 * 1024)

# Large enough for a module plus the form; the API answers 413 past it.
DATA_UPLOAD_MAX_MEMORY_SIZE = 1024 * 1024
FILE_UPLOAD_MAX_MEMORY_SIZE = WW_MODULE_MAX_BYTES + 1024 * 1024

LOG_LEVEL = os.environ.get("WW_LOG_LEVEL", "INFO").upper()
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "line": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"},
    },
    "handlers": {
        "stderr": {"class": "logging.StreamHandler", "formatter": "line"},
    },
    "root": {"handlers": ["stderr"], "level": "WARNING"},
    "loggers": {
        "ww": {"handlers": ["stderr"], "level": LOG_LEVEL, "propagate": False},
        "django.request": {"handlers": ["stderr"], "level": "ERROR", "propagate": False},
    },
}
# Reliability: attempts per run when workers vanish, liveness pings (a
# half-open connection answers none), a worker's grace period on SIGTERM.
WW_MAX_ATTEMPTS = _env_int("WW_MAX_ATTEMPTS", 3)
WW_PING_INTERVAL = _env_float("WW_PING_INTERVAL", 2.0)
WW_PING_TIMEOUT = _env_float("WW_PING_TIMEOUT", 5.0)
# A worker's claimed concurrency is taken as at most this (a member claiming
# 2**32 - 1 would draw every run); a worker that answers malformed outcomes
# (unknown state, bad UTF-8, texts over WW_RESULT_MAX_BYTES) this many times
# is disconnected (its attempts are lost and run elsewhere).
WW_MAX_WORKER_CONCURRENCY = _env_int("WW_MAX_WORKER_CONCURRENCY", 256)
WW_WORKER_MAX_FAULTS = _env_int("WW_WORKER_MAX_FAULTS", 3)
# An attempt still running this many seconds past its run's time limit, that
# no call of this gateway waits for, is lost and its run tried again.
WW_RECLAIM_GRACE = _env_float("WW_RECLAIM_GRACE", 60.0)
# A call on a worker is given up (the attempt lost, the worker disconnected)
# this many seconds after its runs' time limits.
WW_CALL_GRACE = _env_float("WW_CALL_GRACE", 30.0)
# Runs the scheduler holds in memory, earliest due first; the rest wait in the
# database and are read as these go out (memory and start-up time are bounded
# by this, not by the backlog).
WW_QUEUE_WINDOW = _env_int("WW_QUEUE_WINDOW", 10_000)
WW_STOP_GRACE = _env_float("WW_STOP_GRACE", 30.0)
# A file each worker appends a JSON line to per run it finished (workers/agent.py
# ExecutionLog; the fault suite checks it against the database). Empty: off.
WW_EXECUTION_LOG = os.environ.get("WW_EXECUTION_LOG", "")
# How often the scheduler looks in the database for due runs no notification
# announced (a safety net; notifications normally arrive at once).
WW_SWEEP_INTERVAL = _env_float("WW_SWEEP_INTERVAL", 5.0)
# Like Celery's prefetch multiplier: due runs a worker may hold queued beyond
# its concurrency, so a slot goes straight from one run to the next instead
# of idling for a round trip. Only for runs seen to take less than
# WW_PREFETCH_BELOW seconds, and only about that many seconds of them per
# slot, at most WW_PREFETCH runs (queued long runs only add lateness). Such
# runs also travel several to a call: at most WW_BATCH, and about
# WW_BATCH_SECONDS of them (a call's results come back together).
WW_PREFETCH = _env_int("WW_PREFETCH", 64)
WW_PREFETCH_BELOW = _env_float("WW_PREFETCH_BELOW", 0.05)
WW_BATCH = _env_int("WW_BATCH", 64)
WW_BATCH_SECONDS = _env_float("WW_BATCH_SECONDS", 0.005)
# Runs are sent this many seconds before they are due and start on the
# worker's clock at their due time (clocks are assumed in sync, e.g. NTP).
WW_SEND_AHEAD = _env_float("WW_SEND_AHEAD", 0.02)

# --- Connection admission (issue 15) ----------------------------------------
# RPC: a connection must finish its TLS handshake and membership proof within
# WW_RPC_AUTH_TIMEOUT seconds of being accepted, or it is closed; one source
# address may hold WW_RPC_MAX_PER_SOURCE connections at once (each worker
# process holds one; bench/many_workers.py makes 100 from one address), and
# at most WW_RPC_MAX_UNAUTHENTICATED connections may be still authenticating
# in all (a flood from many addresses is bounded too; workers refused
# meanwhile retry). 0: no cap.
# HTTP: a request's headers must be complete within WW_HTTP_HEADER_TIMEOUT
# seconds of the connection opening (on a kept-alive connection, of the
# request's first byte), or the connection is closed with a 408; one source
# address may hold WW_HTTP_MAX_PER_SOURCE connections, websockets included
# (0: no cap; behind a reverse proxy every client has the proxy's address).
WW_RPC_AUTH_TIMEOUT = _env_float("WW_RPC_AUTH_TIMEOUT", 10.0)
WW_RPC_MAX_PER_SOURCE = _env_int("WW_RPC_MAX_PER_SOURCE", 128)
WW_RPC_MAX_UNAUTHENTICATED = _env_int("WW_RPC_MAX_UNAUTHENTICATED", 256)
WW_HTTP_HEADER_TIMEOUT = _env_float("WW_HTTP_HEADER_TIMEOUT", 10.0)
WW_HTTP_MAX_PER_SOURCE = _env_int("WW_HTTP_MAX_PER_SOURCE", 64)

# --- Access control (issue 4) -----------------------------------------------
# WW_WRITES_NEED_AUTH: "auto" (default), "true" or "false". auto: POST needs a
# token (or a staff session with CSRF) unless the HTTP server is bound to a
# loopback address; `rungateway` tells the permission rule its --http host at
# start, and a server started otherwise (bind unknown) counts as public.
# WW_READS_NEED_AUTH: "false" (default) or "true": GET needs a token too.
# The admin always needs a staff login.
WW_WRITES_NEED_AUTH = os.environ.get("WW_WRITES_NEED_AUTH", "auto").strip().lower() or "auto"
WW_READS_NEED_AUTH = _env_bool("WW_READS_NEED_AUTH", False)
# Origins (scheme://host[:port], `*.` wildcards as in CSRF_TRUSTED_ORIGINS)
# whose pages may write (POST, PUT, PATCH, DELETE) besides the gateway's
# own; any other browser origin gets a 403 (tasks_app/api/origin.py).
WW_TRUSTED_ORIGINS = [
    o.strip() for o in os.environ.get("WW_TRUSTED_ORIGINS", "").split(",") if o.strip()
]
if WW_WRITES_NEED_AUTH not in {"auto", "1", "true", "yes", "on", "0", "false", "no", "off"}:
    from django.core.exceptions import ImproperlyConfigured

    raise ImproperlyConfigured(
        f"WW_WRITES_NEED_AUTH must be auto, true or false, not {WW_WRITES_NEED_AUTH!r}"
    )
