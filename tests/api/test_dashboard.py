"""examples/grafana/ww-scheduler.json against what the gateway exports: every
metric named in a panel's PromQL (and in the dashboard's variables) is a
series of a family on the real /metrics, scraped through the Django app
after some activity so that every family has samples. The PromQL reading
is checked too, and a panel naming a metric that does not exist fails."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone
from prometheus_client.parser import text_string_to_metric_families

from cluster_app.host import HostServer
from tasks_app import metrics, worker_calls
from tasks_app.dispatch import Job
from tasks_app.modules import module_hash
from tasks_app.outcomes import WorkerOutcome
from tasks_app.pool import WorkerPool
from tests.api.forms import HASH_WASM

pytestmark = pytest.mark.django_db

DASHBOARD = Path(__file__).resolve().parents[2] / "examples" / "grafana" / "ww-scheduler.json"

# -- reading PromQL ------------------------------------------------------------

_STRING = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`')
_NAME_MATCHER = re.compile(r"__name__\s*=\s*(\"(?:[^\"\\]|\\.)*\"|'(?:[^'\\]|\\.)*')")
_VARIABLE = re.compile(r"\$\{[^}]*\}|\$\w+")  # Grafana's $__rate_interval, ${worker}
_MATCHERS = re.compile(r"\{[^{}]*\}")
_RANGE = re.compile(r"\[[^\]]*\]")
_LABEL_LIST = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^()]*\)")
_OFFSET = re.compile(r"\boffset\s+-?\w+")
_AT = re.compile(r"@\s*[-+]?[\w.]+(?:\s*\(\s*\))?")
_NUMBER = re.compile(r"(?<![\w:])(?:0x[0-9a-fA-F]+|\d+(?:\.\d*)?(?:[eE][+-]?\d+)?|\.\d+)")
_IDENT = re.compile(r"[A-Za-z_:][A-Za-z0-9_:]*")
_KEYWORDS = {"and", "or", "unless", "bool", "inf", "nan"}
_LABEL_VALUES = re.compile(r"^\s*label_values\s*\((.*?)(?:,\s*\w+\s*)?\)\s*$", re.S)


def metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression selects: identifiers that are
    not functions or aggregations (followed by `(`), keywords, label names
    (inside `{...}`, `by (...)`, `on (...)`...), label values and strings,
    durations, numbers or Grafana variables."""
    names = {_unquote(m) for m in _NAME_MATCHER.findall(expr)}
    text = _STRING.sub(" ", expr)
    text = _VARIABLE.sub(" ", text)
    for strip in (_MATCHERS, _RANGE, _LABEL_LIST, _OFFSET, _AT, _NUMBER):
        text = strip.sub(" ", text)
    for match in _IDENT.finditer(text):
        rest = text[match.end() :].lstrip()
        if rest.startswith("(") or match.group().lower() in _KEYWORDS:
            continue
        names.add(match.group())
    return names


def _unquote(literal: str) -> str:
    return literal[1:-1]


def queries(dashboard: dict[str, Any]) -> Iterator[tuple[str, str]]:
    """(where, PromQL) of every panel target, in rows too, and of the
    dashboard's query variables (`label_values(metric, label)`: its metric)."""

    def panels(items: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
        for panel in items:
            yield panel
            yield from panels(panel.get("panels", []))

    for panel in panels(dashboard.get("panels", [])):
        for target in panel.get("targets", []):
            if "expr" in target:
                yield f"panel {panel.get('title')!r} {target.get('refId')}", target["expr"]
    for variable in dashboard.get("templating", {}).get("list", []):
        if variable.get("type") != "query":
            continue
        query = variable.get("query")
        text = query.get("query", "") if isinstance(query, dict) else str(query)
        label_values = _LABEL_VALUES.match(text)
        yield f"variable {variable['name']!r}", label_values.group(1) if label_values else text


# -- what /metrics exports -----------------------------------------------------

_SERIES_SUFFIXES = {
    "counter": ("_total", "_created"),
    "gauge": ("",),
    "histogram": ("_bucket", "_count", "_sum", "_created"),
    "gaugehistogram": ("_bucket", "_gcount", "_gsum"),
    "summary": ("", "_count", "_sum", "_created"),
    "info": ("_info",),
    "stateset": ("",),
    "unknown": ("",),
}


def exported(text: str) -> dict[str, set[str]]:
    """Each series name one can query, with the names its family's samples
    carry in this scrape (empty: the family has no samples yet)."""
    series: dict[str, set[str]] = {}
    for family in text_string_to_metric_families(text):
        sampled = {s.name for s in family.samples}
        for suffix in _SERIES_SUFFIXES[family.type]:
            name = family.name + suffix
            series[name] = {name} & sampled
    return series


def unknown_names(dashboard: dict[str, Any], series: dict[str, set[str]]) -> list[str]:
    """`where: name` for each metric a query names that /metrics does not
    export, or exports without a sample."""
    bad = []
    for where, expr in queries(dashboard):
        for name in sorted(metric_names(expr)):
            if not series.get(name):
                bad.append(f"{where}: {name}")
    return bad


# -- activity, so that every family has samples --------------------------------


class _Link:
    async def run(self, jobs: list[Job]) -> list[WorkerOutcome]:
        now = timezone.now()
        return [
            WorkerOutcome(
                state="succeeded",
                result="1",
                error="",
                exit_code=None,
                started_at=now,
                finished_at=now,
                compile_cached=True,
            )
            for _ in jobs
        ]

    async def cancel(self, task_id: str, index: int) -> bool:
        return False


async def _activity() -> None:
    """A call to a worker (its runs, the compile cache), a module fetch."""
    worker = WorkerPool().add(
        peer_id="12D3KooWDashboard", address="a", concurrency=1, link=_Link(), connection=1
    )
    now = timezone.now()
    job = Job(
        task_id="d",
        index=0,
        module_hash="ab" * 32,
        input=0,
        difficulty=0,
        time_limit=5.0,
        not_before=now,
    )
    [outcome] = await worker_calls.call(worker, [job], timeout=5)
    metrics.observe_run(
        due_at=now,
        started_at=outcome.started_at,
        finished_at=outcome.finished_at,
        state="succeeded",
    )

    async def modules(digest: str) -> bytes | None:
        return HASH_WASM

    async def leave(connection: int) -> None:
        pass

    host = HostServer(
        peer_id="gw", channels={}, connection=1, address="a", on_leave=leave, modules=modules
    )
    host.verified_peer = "12D3KooWDashboard"
    await host.module(module_hash(HASH_WASM), None)


@pytest.fixture
def series(client: Client) -> dict[str, set[str]]:
    asyncio.run(_activity())
    response = client.get("/metrics")
    assert response.status_code == 200
    return exported(response.content.decode())


# -- the tests -----------------------------------------------------------------


def test_every_panels_query_names_metrics_the_gateway_exports(series: dict[str, set[str]]) -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    found = list(queries(dashboard))
    assert len(found) >= 15
    assert unknown_names(dashboard, series) == []
    # And the check covered every family of the gateway's own metrics.
    named = {name for _, expr in found for name in metric_names(expr)}
    families = {name.removesuffix("_total").removesuffix("_bucket") for name in named}
    assert {
        "ww_worker_runs",
        "ww_module_fetches",
        "ww_compile_cache",
        "ww_journal_batch_records",
        "ww_journal_commit_seconds",
        "ww_schedule_firings_made",
        "ww_schedule_fire_times_skipped",
        "ww_dispatch_lateness_seconds",
        "ww_queue_depth",
        "ww_workers_connected",
    } <= families


def test_a_panel_naming_a_metric_that_does_not_exist_fails(series: dict[str, set[str]]) -> None:
    def one_panel(expr: str) -> dict[str, Any]:
        return {"panels": [{"title": "bad", "targets": [{"refId": "A", "expr": expr}]}]}

    assert unknown_names(one_panel("sum(rate(ww_no_such_runs_total[5m]))"), series) == [
        "panel 'bad' A: ww_no_such_runs_total"
    ]
    # A family's name with the wrong suffix for its type is not a series either.
    assert unknown_names(one_panel("rate(ww_queue_depth_total[1m])"), series) == [
        "panel 'bad' A: ww_queue_depth_total"
    ]
    assert unknown_names(one_panel("rate(ww_worker_runs[1m])"), series) == [
        "panel 'bad' A: ww_worker_runs"
    ]
    # Inside a collapsed row, and in a variable.
    row = {"panels": [{"type": "row", "title": "r", "panels": one_panel("ww_nope")["panels"]}]}
    assert unknown_names(row, series) == ["panel 'bad' A: ww_nope"]
    variable = {
        "templating": {
            "list": [
                {
                    "name": "w",
                    "type": "query",
                    "query": {"query": 'label_values(ww_gone_total{a="b"}, worker)'},
                }
            ]
        }
    }
    assert unknown_names(variable, series) == ["variable 'w': ww_gone_total"]
    assert (
        unknown_names(one_panel("sum by (worker) (rate(ww_worker_runs_total[1m]))"), series) == []
    )


@pytest.mark.parametrize(
    ("expr", "names"),
    [
        ("ww_queue_depth", {"ww_queue_depth"}),
        (
            "histogram_quantile(0.99, sum by (le) (rate(ww_dispatch_lateness_seconds_bucket"
            "[$__rate_interval])))",
            {"ww_dispatch_lateness_seconds_bucket"},
        ),
        (
            'sum by (worker, outcome) (rate(ww_worker_runs_total{worker=~"$worker",'
            ' outcome=~"failed|timed_out"}[5m] offset 1h))',
            {"ww_worker_runs_total"},
        ),
        (
            "sum(rate(a_sum[1m])) / sum(rate(a_count[1m])) > bool 0.5 and on (instance) b",
            {"a_sum", "a_count", "b"},
        ),
        ('{__name__="ww_runs", state="failed"} * 1e3', {"ww_runs"}),
        (
            "max without (state) (ww_runs) unless ignoring (x) group_left (y) c:rule",
            {"ww_runs", "c:rule"},
        ),
        ('label_replace(up, "to", "$1", "from", "(.*)")', {"up"}),
        ("time() - 5", set()),
    ],
)
def test_metric_names_reads_promql(expr: str, names: set[str]) -> None:
    assert metric_names(expr) == names


def test_the_dashboard_imports_into_grafana_with_a_prometheus_datasource_variable() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    assert dashboard["schemaVersion"] >= 36 and dashboard["uid"]
    ids = []
    for panel in dashboard["panels"]:
        ids.append(panel["id"])
        assert {"h", "w", "x", "y"} <= panel["gridPos"].keys()
        if panel["type"] != "row":
            assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}
            assert panel["targets"] and all(
                t["datasource"]["uid"] == "${datasource}" for t in panel["targets"]
            )
    assert len(ids) == len(set(ids))
