"""A worker process loads the worker's code and the transport, not the
gateway's: no gateway metrics, no Host capability server, no scheduler."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from tests.e2e.cluster import PROJECT_ROOT

GATEWAY_ONLY = [
    "tasks_app.metrics",
    "tasks_app.scheduler",
    "cluster_app.host",
    "cluster_app.gateway",
    "cluster_app.worker_link",
]


def test_the_worker_command_loads_nothing_of_the_gateway() -> None:
    code = (
        "import django, json, sys; django.setup();"
        "import workers.management.commands.runworker, workers.agent;"
        f"print(json.dumps([m for m in {GATEWAY_ONLY!r} if m in sys.modules]))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        cwd=PROJECT_ROOT,
        env={**os.environ, "DJANGO_SETTINGS_MODULE": "wwproject.settings"},
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout
    assert json.loads(out.strip().splitlines()[-1]) == []
