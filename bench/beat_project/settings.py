"""Django settings of the beat baseline: only django_celery_beat, on a
SQLite file the bench makes per run (BENCH_BEAT_DB; bench/beat_side.py)."""

from __future__ import annotations

import os

SECRET_KEY = "bench-only-not-secret"
DEBUG = False
ALLOWED_HOSTS: list[str] = []
INSTALLED_APPS = ["django_celery_beat"]
DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": os.environ.get("BENCH_BEAT_DB", "/tmp/ww-bench-beat.sqlite3"),
        # beat and the seeding process share the file; WAL lets beat read
        # while another writes.
        "OPTIONS": {"init_command": "PRAGMA journal_mode=WAL;", "timeout": 30},
    }
}
USE_TZ = True
TIME_ZONE = "UTC"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
DJANGO_CELERY_BEAT_TZ_AWARE = True
