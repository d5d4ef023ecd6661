"""The metrics operators miss elsewhere, on a real gateway with a real
worker (private network namespace, real processes, nothing mocked): after
a task that succeeds, one that fails and a schedule's firings, /metrics
counts the runs and failures under the worker's peer ID, its module
fetches, the compile cache as the worker reported it in its outcomes, the
journal's batches and the firings; and every panel of the Grafana
dashboard names series this gateway exports."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.api.test_dashboard import DASHBOARD, exported, unknown_names
from tests.e2e.cluster import Cluster, running_cluster
from tests.faults.harness import NOOP_WAT, TRAP_WAT, submit, wasm

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    state_dir: Path = tmp_path_factory.mktemp("metrics_live")
    with running_cluster(state_dir, workers=1, concurrency=2) as cluster:
        yield cluster


def _task_done(cluster: Cluster, task_id: str, runs: int) -> bool:
    by_state = cluster.request("GET", f"/tasks/{task_id}").json()["runs_by_state"]
    return sum(n for state, n in by_state.items() if state not in ("pending", "running")) == runs


def _scrape(cluster: Cluster) -> tuple[str, Samples]:
    response = cluster.request("GET", "/metrics")
    assert response.status_code == 200
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(response.text)
        for s in family.samples
    }
    return response.text, samples


@pytest.fixture(scope="module")
def scraped(cluster: Cluster) -> tuple[str, Samples]:
    """/metrics after 4 runs that succeed, 2 that fail and 2+ firings."""
    submit(cluster, NOOP_WAT, id="ok", start="0.2", delay="0.1", repeats="4", duration="10")
    submit(cluster, TRAP_WAT, id="bad", start="0.2", delay="0.1", repeats="2", duration="10")
    module = cluster.request(
        "POST", "/modules", content=wasm(NOOP_WAT), headers={"Content-Type": "application/wasm"}
    ).json()["sha256"]
    made = cluster.request(
        "POST", "/schedules", json={"name": "tick", "module": module, "every": 0.5}
    )
    assert made.status_code == 201, made.text
    cluster.wait_for(lambda: _task_done(cluster, "ok", 4), 60, "task ok")
    cluster.wait_for(lambda: _task_done(cluster, "bad", 2), 60, "task bad")

    def two_firings_ran() -> bool:
        _, samples = _scrape(cluster)
        return samples.get(("ww_schedule_firing_decisions_total", (("decision", "run"),)), 0) >= 2

    cluster.wait_for(two_firings_ran, 30, "two firings")
    paused = cluster.request("PATCH", "/schedules/tick", json={"paused": True})
    assert paused.status_code == 200, paused.text

    def settled() -> tuple[str, Samples] | None:
        """Two scrapes a moment apart that agree: no run is ending any more."""
        first = _scrape(cluster)
        time.sleep(0.5)
        second = _scrape(cluster)
        runs = [
            {k: v for k, v in samples.items() if k[0] == "ww_worker_runs_total"}
            for _, samples in (first, second)
        ]
        return second if runs[0] == runs[1] else None

    scrape: tuple[str, Samples] = cluster.wait_for(settled, 30, "the runs to settle")
    return scrape


def test_runs_and_failures_count_under_the_workers_peer_id(
    cluster: Cluster, scraped: tuple[str, Samples]
) -> None:
    _, samples = scraped
    (_, peer) = cluster.workers[0]

    def runs(outcome: str) -> float:
        return samples.get(("ww_worker_runs_total", (("outcome", outcome), ("worker", peer))), 0.0)

    assert runs("succeeded") >= 4 + 1  # the task's four and at least one firing
    assert runs("failed") == 2
    assert runs("lost") == 0
    # One fetch per module: the jobs carry only its hash (both tasks' modules;
    # the schedule's module is the first task's).
    assert samples[("ww_module_fetches_total", (("worker", peer),))] == 2


def test_the_compile_cache_counts_what_the_worker_reported(
    scraped: tuple[str, Samples],
) -> None:
    _, samples = scraped
    hits = samples[("ww_compile_cache_total", (("result", "hit"),))]
    misses = samples[("ww_compile_cache_total", (("result", "miss"),))]
    # Each of the two modules is compiled at least once (two first runs at
    # once may both miss); every other run found it compiled.
    assert misses >= 2 and hits >= 1
    ran = sum(
        value
        for (name, labels), value in samples.items()
        if name == "ww_worker_runs_total" and ("outcome", "lost") not in labels
    )
    assert hits + misses == ran


def test_journal_batches_and_firings(scraped: tuple[str, Samples]) -> None:
    _, samples = scraped
    batches = samples[("ww_journal_batch_records_count", ())]
    assert batches >= 1
    # Every run sent and ended is a record written in some batch.
    assert samples[("ww_journal_batch_records_sum", ())] >= 2 * 6
    assert samples[("ww_journal_commit_seconds_count", ())] == batches
    assert samples[("ww_journal_commit_seconds_sum", ())] > 0
    assert samples[("ww_schedule_firings_made_total", ())] >= 3  # the head made ahead
    decided = samples[("ww_schedule_firing_decisions_total", (("decision", "run"),))]
    assert decided >= 2


def test_every_dashboard_panel_names_series_this_gateway_exports(
    scraped: tuple[str, Samples],
) -> None:
    text, _ = scraped
    dashboard = json.loads(DASHBOARD.read_text())
    assert unknown_names(dashboard, exported(text)) == []
