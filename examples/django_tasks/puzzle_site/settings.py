"""A tiny Django project that hands its background work to a ww-scheduler
cluster through Django's task framework (the django-tasks backport).

It has no database and no app of the scheduler's: ClusterBackend with a
`url` reaches the gateway over its REST API only."""

from __future__ import annotations

import os

SECRET_KEY = "example-only-not-secret"
DEBUG = True
USE_TZ = True
INSTALLED_APPS = ["django_tasks"]

TASKS = {
    "default": {
        "BACKEND": "tasks_app.django_tasks.ClusterBackend",
        "OPTIONS": {
            # `make run`'s gateway; WW_TOKEN if it asks for one.
            "url": os.environ.get("WW_URL", "http://127.0.0.1:8080"),
            "token": os.environ.get("WW_TOKEN") or None,
        },
    }
}
