"""A bench-only Django project for the Celery beat baseline (issue 18):
django-celery-beat's models and DatabaseScheduler on a SQLite file of the
bench's own (BENCH_BEAT_DB), the Celery app beat sends to and the worker
runs (bench/beat_project/celery_app.py). Never part of the product's
settings (wwproject)."""

import os

# What the bench process needs without configuring Django (celery_app.py does).
REDIS_URL = os.environ.get("BENCH_BEAT_REDIS_URL", "redis://127.0.0.1:6379/12")
QUEUE = "wwbeat"
STARTS_KEY = "wwbeat:starts"
TASK = "wwbeat.fire"
