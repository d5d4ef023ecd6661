"""Settings for ww-scheduler.

Every knob comes from an environment variable with a safe embedded default,
and is read here and nowhere else: the ``WW_*`` ones into the typed objects
their apps define (``tasks_app/conf.py``, ``cluster_app/conf.py``,
``workers/conf.py``, ``wwproject/conf.py``: name, type, default, doc).
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

import dj_database_url

from cluster_app.conf import ClusterSettings
from tasks_app.conf import TasksSettings
from tasks_app.settings_spec import env_value
from workers.conf import WorkerSettings
from wwproject.conf import ProjectSettings

BASE_DIR = Path(__file__).resolve().parent.parent

# Every WW_* setting, read once. Code reads them typed, e.g.
# `settings.WW_TASKS.prefetch`, and is handed these objects (GatewayConfig,
# WorkerConfig); the README's table is made from them (wwproject/settings_table.py).
WW_TASKS = TasksSettings.from_env(os.environ)
WW_CLUSTER = ClusterSettings.from_env(os.environ)
WW_WORKERS = WorkerSettings.from_env(os.environ)
WW_PROJECT = ProjectSettings.from_env(os.environ)
# Only these four objects: no `settings.WW_PREFETCH` beside them, so a test
# or a settings file that sets a plain name cannot be silently ignored.

# Where a node keeps its state: the SQLite database, its identity key, the
# admin password made by `make run`.
STATE_DIR = WW_CLUSTER.state_dir
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
DEBUG = env_value(os.environ, "DJANGO_DEBUG", bool, False)
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
DATABASES = {
    "default": dj_database_url.parse(
        os.environ.get("DATABASE_URL", f"sqlite:///{STATE_DIR / 'db.sqlite3'}"),
        conn_max_age=WW_PROJECT.db_conn_max_age,
        conn_health_checks=True,
    )
}
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
# submissions (WW_CHANNEL_CAPACITY; the scheduler also sweeps the database, so
# a dropped notification delays runs, never loses them). A websocket whose
# consumer lets WW_WS_QUEUE_MESSAGES event batches wait is closed (4008).
CHANNEL_LAYERS = {
    "default": {
        "BACKEND": "tasks_app.compat_channels.LocalChannelLayer",
        "CONFIG": {
            "capacity": WW_TASKS.channel_capacity,
            "member_capacity": WW_TASKS.ws_queue_messages,
        },
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
                "capacity": WW_TASKS.channel_capacity,
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

# Large enough for a module plus the form; the API answers 413 past it.
DATA_UPLOAD_MAX_MEMORY_SIZE = 1024 * 1024
FILE_UPLOAD_MAX_MEMORY_SIZE = WW_TASKS.request_body_max_bytes

LOG_LEVEL = str(WW_CLUSTER.log_level)
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
