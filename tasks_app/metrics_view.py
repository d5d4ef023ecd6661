"""`GET /metrics`: Prometheus text.

Two sources: what this process recorded (`tasks_app.metrics`: dispatch
lateness and run duration, workers connected and queue depth, runs and
module fetches per worker, compile-cache hits, journal batches, schedule
firings and skipped fire times — the gateway process fills these), and
what the database holds, counted at scrape time (runs by state, so any
process behind the same database gives the same numbers). A dashboard for
them: examples/grafana/."""

from __future__ import annotations

from collections.abc import Iterator

from django.db.models import Count
from django.http import HttpRequest, HttpResponse
from django.views.decorators.http import require_GET
from prometheus_client import REGISTRY, CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.registry import Collector

import tasks_app.metrics  # noqa: F401 - registers this process's own metrics
from tasks_app.models import Iteration, PendingCancellation


class RunStateCollector(Collector):
    """`ww_runs{state=...}`: how many runs are in each state now, as every
    read shows them: a cancelled task's runs the settler has not reached
    yet still say `pending` in their rows and count as `cancelled` (none
    of them will run; tasks_app.state_counts)."""

    def collect(self) -> Iterator[Metric]:
        counts = dict.fromkeys(Iteration.State.values, 0)
        for row in Iteration.objects.values("state").annotate(n=Count("id")).order_by():
            counts[row["state"]] = row["n"]
        unsettled = Iteration.objects.filter(
            state=Iteration.State.PENDING,
            task_id__in=PendingCancellation.objects.values("task_id"),
            task__cancelled_at__isnull=False,
        ).count()
        counts[Iteration.State.PENDING] -= unsettled
        counts[Iteration.State.CANCELLED] += unsettled
        family = GaugeMetricFamily("ww_runs", "Runs by state, from the database", labels=["state"])
        for state, n in counts.items():
            family.add_metric([state], n)
        yield family


DATABASE_REGISTRY = CollectorRegistry(auto_describe=False)
DATABASE_REGISTRY.register(RunStateCollector())


@require_GET
def metrics(request: HttpRequest) -> HttpResponse:
    body = generate_latest(REGISTRY) + generate_latest(DATABASE_REGISTRY)
    return HttpResponse(body, content_type=CONTENT_TYPE_LATEST)
