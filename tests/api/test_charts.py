"""The live charts' data (tasks_app/charts.py) and `GET /api/charts`: a run
the scheduler observes lands in the sample of the step it ended in, under
its outcome; lateness quantiles come from the runs observed in the step
(due vs started, as the scheduler reports them); the series keeps a fixed
number of samples; the endpoint is read under the status page's rule."""

from __future__ import annotations

import asyncio
import dataclasses
import math
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from django.contrib.auth.models import User
from django.test import Client
from rest_framework.authtoken.models import Token

from tasks_app import charts, metrics

DUE = datetime(2026, 12, 4, 12, 0, tzinfo=UTC)


def _run(*, late: float, state: str = "succeeded", took: float = 0.5) -> None:
    """What the scheduler tells the metrics when an attempt ends."""
    started = DUE + timedelta(seconds=late)
    metrics.observe_run(
        due_at=DUE, started_at=started, finished_at=started + timedelta(seconds=took), state=state
    )


@pytest.fixture
def series() -> Iterator[charts.ChartSeries]:
    charts.SERIES.clear()
    yield charts.SERIES
    charts.SERIES.clear()


def test_a_run_lands_in_the_step_it_ended_in_under_its_outcome() -> None:
    first = charts.read_metrics(at=1000.0)
    second = charts.read_metrics(at=1005.0)
    _run(late=0.003)
    _run(late=0.003, state="failed")
    _run(late=0.003)
    metrics.worker_ran("12D3KooWchartsLost", "lost")  # an attempt lost: its run is tried again
    third = charts.read_metrics(at=1010.0)
    fourth = charts.read_metrics(at=1015.0)

    quiet, busy, after = (
        charts.sample_between(first, second),
        charts.sample_between(second, third),
        charts.sample_between(third, fourth),
    )
    assert busy.at == 1010.0
    assert busy.ended == {"succeeded": 2, "failed": 1, "timed_out": 0, "cancelled": 0, "lost": 1}
    assert quiet.ended == after.ended == dict.fromkeys(charts.OUTCOMES, 0)
    # A step without runs has no lateness (a gap in the chart, not zero).
    assert quiet.lateness_p50 is quiet.lateness_p99 is None
    assert after.lateness_p50 is None


def test_lateness_quantiles_come_from_the_runs_of_the_step() -> None:
    before = charts.read_metrics()
    for _ in range(90):
        _run(late=0.003)  # in the (2 ms, 5 ms] bucket
    for _ in range(10):
        _run(late=4.0)  # in the (2.5 s, 5 s] bucket
    _run(late=-1.0)  # started before its due time: not late, counted as 0
    sample = charts.sample_between(before, charts.read_metrics())

    assert sample.ended["succeeded"] == 101
    assert sample.lateness_p50 is not None and 0.002 < sample.lateness_p50 <= 0.005
    assert sample.lateness_p99 is not None and 2.5 < sample.lateness_p99 <= 5.0


def test_a_gauge_is_its_value_at_the_steps_end() -> None:
    depth, workers = [7.0], [2.0]
    metrics.bind_gateway(workers=lambda: workers[0], queue_depth=lambda: depth[0])
    try:
        before = charts.read_metrics()
        depth[0], workers[0] = 3.0, 1.0
        sample = charts.sample_between(before, charts.read_metrics())
    finally:
        metrics.bind_gateway(workers=lambda: 0, queue_depth=lambda: 0)
    assert (sample.queue_depth, sample.workers) == (3.0, 1.0)


def test_quantile_interpolates_inside_its_bucket_like_prometheus() -> None:
    buckets = [(0.1, 10.0), (0.2, 30.0), (0.4, 40.0), (math.inf, 40.0)]
    assert charts.quantile(0.25, buckets) == pytest.approx(0.1)  # rank 10: the first bucket's top
    assert charts.quantile(0.5, buckets) == pytest.approx(0.15)  # rank 20: half of (0.1, 0.2]
    assert charts.quantile(1.0, buckets) == pytest.approx(0.4)
    # Beyond the last finite bound: that bound (there is nothing to interpolate to).
    assert charts.quantile(0.99, [(0.1, 1.0), (math.inf, 10.0)]) == pytest.approx(0.1)
    assert charts.quantile(0.5, [(0.1, 0.0), (math.inf, 0.0)]) is None
    assert charts.quantile(0.5, []) is None


def test_a_counter_made_again_counts_no_negative_runs() -> None:
    high = charts.Reading(
        at=5.0, ended=dict.fromkeys(charts.OUTCOMES, 9.0), lateness=(), queue_depth=0, workers=0
    )
    low = dataclasses.replace(high, at=10.0, ended=dict.fromkeys(charts.OUTCOMES, 1.0))
    assert charts.sample_between(high, low).ended == dict.fromkeys(charts.OUTCOMES, 0)


def test_the_sampler_adds_one_sample_per_step_on_the_steps_multiples() -> None:
    series = charts.ChartSeries(points=4, step=0.05)
    added: list[charts.Sample] = []
    add = series.add
    series.add = lambda sample: (added.append(sample), add(sample))[1]  # type: ignore[method-assign]  # counts what goes in

    async def main() -> None:
        sampler = asyncio.create_task(charts.keep_sampling(series))
        try:
            await asyncio.sleep(0)
            assert series.sampled
            async with asyncio.timeout(10):
                while len(added) < 6:
                    await asyncio.sleep(0.01)
        finally:
            sampler.cancel()
            await asyncio.gather(sampler, return_exceptions=True)

    assert not series.sampled
    asyncio.run(main())
    assert not series.sampled  # its sampler stopped
    samples = series.samples()
    assert samples == added[-4:]  # the oldest went: `points` samples, whatever the time
    ats = [s.at for s in samples]
    assert ats == sorted(set(ats))
    for at in ats:  # stamped with the multiple of the step it was due at
        assert round(at / 0.05) * 0.05 == pytest.approx(at), ats


def _filled(series: charts.ChartSeries, samples: int) -> None:
    reading = charts.read_metrics(at=0.0)
    for n in range(1, samples + 1):
        later = dataclasses.replace(reading, at=n * series.step)
        series.add(charts.sample_between(reading, later))
        reading = later


def test_the_endpoint_serves_the_series_column_by_column(
    client: Client, series: charts.ChartSeries
) -> None:
    empty = client.get("/api/charts").json()
    assert empty["at"] == [] and empty["ended"]["succeeded"] == []
    assert (empty["step"], empty["points"]) == (charts.STEP, charts.POINTS)
    assert empty["sampled"] is False  # no gateway in this process
    assert charts.STEP * charts.POINTS == 15 * 60

    before = charts.read_metrics(at=100.0)
    _run(late=0.01)
    series.add(charts.sample_between(before, charts.read_metrics(at=105.0)))
    response = client.get("/api/charts")
    assert response.status_code == 200
    assert "no-cache" in response["Cache-Control"]
    body = response.json()
    assert body["at"] == [105.0]
    assert body["ended"] == {
        "succeeded": [1],
        "failed": [0],
        "timed_out": [0],
        "cancelled": [0],
        "lost": [0],
    }
    assert 0.005 < body["lateness_p50"][0] <= 0.01
    assert len(body["queue_depth"]) == len(body["workers"]) == 1


def test_the_series_is_bounded(client: Client, series: charts.ChartSeries) -> None:
    _filled(series, charts.POINTS + 50)
    body = client.get("/api/charts").json()
    columns = [body["at"], body["lateness_p50"], body["lateness_p99"], body["queue_depth"]]
    columns += [body["workers"], *body["ended"].values()]
    assert {len(c) for c in columns} == {charts.POINTS}
    assert body["at"][-1] == (charts.POINTS + 50) * charts.STEP  # the newest kept
    assert body["at"][0] == 51 * charts.STEP  # the oldest dropped


@pytest.mark.django_db
def test_closed_reads_close_the_charts_as_the_status_json(
    client: Client, settings, series: charts.ChartSeries
) -> None:  # type: ignore[no-untyped-def]
    assert client.get("/api/charts").status_code == 200  # open while reads are
    settings.WW_TASKS = dataclasses.replace(settings.WW_TASKS, reads_need_auth=True)
    _filled(series, 3)
    for path in ("/api/status", "/api/charts"):
        refused = client.get(path)
        assert refused.status_code == 401, path
        assert refused["WWW-Authenticate"] == "Token"
        assert "ended" not in refused.content.decode()
    user = User.objects.create_user("reader", password="pw-for-tests", is_staff=True)
    token = Token.objects.create(user=user).key
    assert client.get("/api/charts", HTTP_AUTHORIZATION=f"Token {token}").status_code == 200
    assert client.get("/api/charts", HTTP_AUTHORIZATION="Token wrong").status_code == 401
    client.login(username="reader", password="pw-for-tests")
    assert len(client.get("/api/charts").json()["at"]) == 3
    assert client.post("/api/charts").status_code == 405
