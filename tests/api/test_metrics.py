"""GET /metrics: Prometheus text with the runs by state (counted in the
database at scrape time) and the histograms and gauges the gateway records.
(tests/cli checks the same page on a live gateway after real runs.)"""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone
from prometheus_client.parser import text_string_to_metric_families

from tasks_app import metrics, run_records, services
from tasks_app.journal import RunEnded, RunSent
from tasks_app.models import Iteration, WorkerNode
from tests.api.forms import HASH_WASM

pytestmark = pytest.mark.django_db


def scrape(client: Client) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain; version=")
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(response.content.decode())
        for s in family.samples
    }


def test_runs_by_state_and_the_recorded_histograms(client: Client) -> None:
    services.create_task(
        task_id="m1",
        description="",
        wasm=HASH_WASM,
        duration=5,
        start=0,
        delay=0,
        repeats=3,
        input=0,
        difficulty=3,
    )
    WorkerNode.objects.create(peer_id="12D3KooWMetrics", last_seen=timezone.now())
    before = scrape(client)

    # Run 0 goes to a worker and succeeds; the gateway records it.
    run = Iteration.objects.get(task_id="m1", index=0)
    started = run.due_at + timedelta(milliseconds=20)
    finished = started + timedelta(milliseconds=300)
    run_records.record_runs(
        [
            RunSent(
                iteration_id=run.pk,
                task_id="m1",
                index=0,
                number=1,
                worker_peer_id="12D3KooWMetrics",
                sent_at=started,
            ),
            RunEnded(
                iteration_id=run.pk,
                task_id="m1",
                index=0,
                number=1,
                worker_peer_id="12D3KooWMetrics",
                outcome="succeeded",
                run_state="succeeded",
                result="2832",
                started_at=started,
                finished_at=finished,
            ),
        ]
    )
    metrics.observe_run(
        due_at=run.due_at, started_at=started, finished_at=finished, state="succeeded"
    )
    after = scrape(client)

    assert after[("ww_runs", (("state", "succeeded"),))] == 1
    assert after[("ww_runs", (("state", "pending"),))] == 2
    assert after[("ww_runs", (("state", "failed"),))] == 0
    lateness = "ww_dispatch_lateness_seconds"
    assert after[(f"{lateness}_count", ())] == before[(f"{lateness}_count", ())] + 1
    assert after[(f"{lateness}_bucket", (("le", "0.025"),))] == (
        before[(f"{lateness}_bucket", (("le", "0.025"),))] + 1
    )
    duration = ("ww_run_duration_seconds_count", (("state", "succeeded"),))
    assert after[duration] == before.get(duration, 0) + 1
    assert ("ww_workers_connected", ()) in after
    assert ("ww_queue_depth", ()) in after
