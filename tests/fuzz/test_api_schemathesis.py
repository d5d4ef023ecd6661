"""Schemathesis against the project's own OpenAPI schema (/api/schema/),
served by a real `rungateway` (no workers, no discovery) in a private network
namespace: whatever the generated requests hold, the API never answers 5xx.
The schema names `/tasks/`; the API answers `/tasks` too (the seed's curl has
no slash), and a plain `POST /tasks` is read there by the submission lane
(tasks_app/api/lane.py) before Django: both spellings are fuzzed, and a test
checks the generated submissions do reach the lane (its counter on /metrics).

The budget is small for CI. For a longer run:

    WW_FUZZ_EXAMPLES=1000 .venv/bin/python -m pytest tests/fuzz -p no:cacheprovider

WW_FUZZ_STRICT=1 also runs schemathesis' other checks (status codes, content
types and bodies conform to the schema).
"""

from __future__ import annotations

import copy
import os
import re
from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings

from tests.e2e.cluster import HTTP, Cluster, running_cluster

EXAMPLES = int(os.environ.get("WW_FUZZ_EXAMPLES", "25"))
STRICT = os.environ.get("WW_FUZZ_STRICT") == "1"
BASE_URL = f"http://{HTTP}"


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    with running_cluster(
        tmp_path_factory.mktemp("fuzz"),
        gateway_args=("--no-discovery",),
        # Keep what one accepted submission can cost small: the fuzzer
        # would otherwise ask for 100 000 runs per task.
        WW_MAX_REPEATS="50",
        WW_LOG_LEVEL="WARNING",
    ) as cluster:
        yield cluster


def _served_schema() -> dict:
    # The schema /api/schema/ serves, generated in-process so that the cases
    # can be parametrized at collection time (schemathesis' lazy fixture
    # loading does not work with pytest 9); the test checks the live gateway
    # serves the same document.
    from drf_spectacular.generators import SchemaGenerator

    return SchemaGenerator().get_schema(request=None, public=True)


def _without_slashes(served: dict[str, Any]) -> dict[str, Any]:
    """`served`, and each of its /tasks paths again without the trailing
    slash (the same views answer both; the lane takes only `/tasks`)."""
    fuzzed = copy.deepcopy(served)
    for path, item in served["paths"].items():
        if path.startswith("/tasks") and path.endswith("/"):
            twin = copy.deepcopy(item)
            for operation in twin.values():
                if isinstance(operation, dict) and "operationId" in operation:
                    operation["operationId"] += "_no_slash"
            fuzzed["paths"][path.rstrip("/")] = twin
    return fuzzed


SCHEMA = _served_schema()
FUZZED = _without_slashes(SCHEMA)
schema = schemathesis.openapi.from_dict(FUZZED)
LANE_METRIC = re.compile(r'^ww_submission_lane_total\{outcome="(\w+)"\} (\S+)$', re.MULTILINE)


def test_gateway_serves_the_schema_being_fuzzed(gateway: Cluster) -> None:
    served = gateway.request("GET", "/api/schema/", headers={"Accept": "application/json"})
    assert served.status_code == 200, served.text[:500]
    assert served.json()["paths"].keys() == SCHEMA["paths"].keys()
    assert {"/tasks/", "/tasks/{task_id}/"} <= SCHEMA["paths"].keys()
    assert {"/tasks", "/tasks/{task_id}"} <= FUZZED["paths"].keys()


def _lane_reads(gateway: Cluster) -> dict[str, float]:
    """The submission lane's counter in the gateway: requests it read, by outcome."""
    metrics = gateway.request("GET", "/metrics")
    assert metrics.status_code == 200
    return {outcome: float(n) for outcome, n in LANE_METRIC.findall(metrics.text)}


def test_generated_submissions_reach_the_lane(gateway: Cluster) -> None:
    """The fuzzer's `POST /tasks` cases are read by the lane (answered by it,
    or handed to Django whole when not plainly valid), not only by Django."""
    before = sum(_lane_reads(gateway).values())
    sent = []

    @given(case=schema["/tasks"]["POST"].as_strategy())
    @settings(
        max_examples=10,
        deadline=None,
        suppress_health_check=list(HealthCheck),
        derandomize=True,
    )
    def submit(case: schemathesis.Case) -> None:
        with gateway.netns.entered():
            response = case.call(base_url=BASE_URL)
        assert response.status_code < 500, response.text[:500]
        sent.append(response.status_code)

    submit()
    assert sent
    assert sum(_lane_reads(gateway).values()) > before, sent


@schema.parametrize()
@settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    derandomize=True,  # CI runs the same examples every time
)
def test_api_never_answers_with_a_server_error(case: schemathesis.Case, gateway: Cluster) -> None:
    with gateway.netns.entered():
        if STRICT:
            # Reads are public by design (WW_READS_NEED_AUTH=false), so a GET
            # with a made-up session cookie answering 200 is not a finding.
            response = case.call_and_validate(
                base_url=BASE_URL, excluded_checks=[schemathesis.checks.ignored_auth]
            )
        else:
            response = case.call(base_url=BASE_URL)
    assert response.status_code < 500, (
        f"{case.method} {case.formatted_path} -> {response.status_code}: {response.text[:500]}"
    )
    assert gateway.gateway is not None and gateway.gateway.popen.poll() is None
