"""Schemathesis against the project's own OpenAPI schema (/api/schema/),
served by a real `rungateway` (no workers, no discovery) in a private network
namespace: whatever the generated requests hold, the API never answers 5xx.

The budget is small for CI. For a longer run:

    WW_FUZZ_EXAMPLES=1000 .venv/bin/python -m pytest tests/fuzz -p no:cacheprovider

WW_FUZZ_STRICT=1 also runs schemathesis' other checks (status codes, content
types and bodies conform to the schema).
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
import schemathesis
from hypothesis import HealthCheck, settings

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


SCHEMA = _served_schema()
schema = schemathesis.openapi.from_dict(SCHEMA)


def test_gateway_serves_the_schema_being_fuzzed(gateway: Cluster) -> None:
    served = gateway.request("GET", "/api/schema/", headers={"Accept": "application/json"})
    assert served.status_code == 200, served.text[:500]
    assert served.json()["paths"].keys() == SCHEMA["paths"].keys()
    assert {"/tasks/", "/tasks/{task_id}/"} <= SCHEMA["paths"].keys()


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
