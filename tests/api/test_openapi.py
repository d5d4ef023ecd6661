"""OpenAPI 3 for the REST API at /api/schema/, Swagger UI at /api/docs/
(served without a CDN), and DRF's browsable API for browsers while curl
keeps getting JSON."""

from __future__ import annotations

import io

import pytest
import yaml
from django.conf import settings
from django.contrib.staticfiles import finders
from django.core.management import call_command
from django.test import Client

pytestmark = pytest.mark.django_db

SEED_FIELDS = {
    "id",
    "description",
    "complete",
    "duration",
    "start",
    "delay",
    "repeats",
    "wasm",
    "input",
    "difficulty",
}


@pytest.fixture
def schema(client: Client) -> dict:
    response = client.get("/api/schema/", HTTP_HOST="127.0.0.1")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("application/vnd.oai.openapi")
    return yaml.safe_load(response.content)


def test_schema_is_openapi_3_with_every_endpoint(schema: dict) -> None:
    assert schema["openapi"].startswith("3.")
    paths = schema["paths"]
    assert set(paths["/tasks/"]) >= {"get", "post"}
    assert set(paths["/tasks/{task_id}/"]) >= {"get", "delete"}
    listing = paths["/tasks/"]["get"]
    assert {p["name"] for p in listing["parameters"]} >= {"limit", "offset"}
    assert set(listing["responses"]["200"]["headers"]) == {"Link", "X-Total-Count"}
    assert listing["responses"]["200"]["content"]["application/json"]["schema"]["type"] == "array"


def test_upload_is_documented_as_the_seeds_multipart_form(schema: dict) -> None:
    post = schema["paths"]["/tasks/"]["post"]
    body = post["requestBody"]["content"]
    assert list(body) == ["multipart/form-data"]
    ref = body["multipart/form-data"]["schema"]["$ref"].rsplit("/", 1)[-1]
    form = schema["components"]["schemas"][ref]
    assert set(form["properties"]) >= SEED_FIELDS
    assert {k: form["properties"]["wasm"][k] for k in ("type", "format")} == {
        "type": "string",
        "format": "binary",
    }
    assert set(form["required"]) >= {"id", "wasm"}
    assert set(post["responses"]) >= {"201", "400", "409", "413"}
    error = schema["components"]["schemas"]["Error"]
    assert set(error["properties"]) >= {"field", "problem", "detail"}


def test_task_detail_shape_lists_runs_and_attempts(schema: dict) -> None:
    detail = schema["components"]["schemas"]["TaskDetail"]["properties"]
    assert detail["runs"]["type"] == "array"
    run = schema["components"]["schemas"][detail["runs"]["items"]["$ref"].rsplit("/", 1)[-1]]
    assert set(run["properties"]) >= {"index", "due_at", "state", "worker", "result", "attempts"}


def _form(schema: dict) -> dict:
    post = schema["paths"]["/tasks/"]["post"]
    ref = post["requestBody"]["content"]["multipart/form-data"]["schema"]["$ref"]
    return schema["components"]["schemas"][ref.rsplit("/", 1)[-1]]


def test_every_form_field_is_documented_with_its_default_and_limits(schema: dict) -> None:
    form = _form(schema)
    fields = form["properties"]
    for name in SEED_FIELDS | {"retries"}:
        description = fields[name].get("description", "")
        required = name in form["required"]
        assert description.startswith("Required." if required else "Optional"), name
    assert set(form["required"]) == {"id", "wasm"}
    assert fields["repeats"]["maximum"] == settings.WW_TASKS.max_repeats
    assert str(settings.WW_TASKS.max_repeats) in fields["repeats"]["description"]
    assert fields["repeats"]["default"] == 1 and fields["repeats"]["minimum"] == 0
    for seconds in ("duration", "start", "delay"):
        assert fields[seconds]["minimum"] == 0 and fields[seconds]["default"] == 0, seconds
        assert "seconds" in fields[seconds]["description"].lower(), seconds
    assert fields["duration"]["maximum"] == settings.WW_TASKS.max_duration
    assert fields["start"]["maximum"] == fields["delay"]["maximum"] == settings.WW_TASKS.max_offset
    assert f"{settings.WW_TASKS.default_duration:g} s" in fields["duration"]["description"]
    assert "ignored" in fields["complete"]["description"]
    assert "16 MiB" in fields["wasm"]["description"]  # the default WW_MODULE_MAX_BYTES
    assert "unsigned" in fields["wasm"]["description"]
    for integer in ("input", "difficulty"):
        assert fields[integer]["minimum"] == -(2**63) and fields[integer]["maximum"] == 2**63 - 1


def test_run_pages_and_counts_by_state_are_documented(schema: dict) -> None:
    detail = schema["paths"]["/tasks/{task_id}/"]
    parameters = {p["name"]: p for p in detail["get"]["parameters"]}
    assert "1-1000 (100)" in parameters["runs_limit"]["description"]
    assert parameters["runs_offset"]["schema"]["type"] == "integer"
    assert set(detail["get"]["responses"]["200"]["headers"]) == {"Link"}
    assert "400" in detail["get"]["responses"]
    components = schema["components"]["schemas"]
    by_state = components["RunsByState"]["properties"]
    assert set(by_state) == {"pending", "running", "succeeded", "failed", "timed_out", "cancelled"}
    page = components["TaskDetail"]["properties"]
    assert page["runs_by_state"]["allOf"][0]["$ref"].endswith("/RunsByState")
    assert {"run_count", "runs_offset", "runs_limit"} <= set(page)
    cancelled = detail["delete"]["responses"]["200"]["content"]["application/json"]["schema"]
    summary = components[cancelled["$ref"].rsplit("/", 1)[-1]]["properties"]
    assert summary["runs"]["type"] == "integer"  # a count, not the runs
    assert "runs_by_state" in summary


def test_schema_generates_without_warnings() -> None:
    out = io.StringIO()
    call_command("spectacular", "--validate", "--fail-on-warn", stdout=out)
    assert "openapi: 3" in out.getvalue()


def test_swagger_ui_page_uses_local_assets(client: Client) -> None:
    page = client.get("/api/docs/", HTTP_HOST="127.0.0.1").content.decode()
    assert "/api/schema/" in page
    assert "/static/drf_spectacular_sidecar/swagger-ui-dist/swagger-ui-bundle.js" in page
    assert "cdn." not in page
    assert finders.find("drf_spectacular_sidecar/swagger-ui-dist/swagger-ui-bundle.js")


def test_browsable_api_for_browsers_json_for_curl(client: Client) -> None:
    browser = client.get("/tasks", HTTP_HOST="127.0.0.1", HTTP_ACCEPT="text/html")
    assert browser.status_code == 200
    assert browser["Content-Type"].startswith("text/html")
    assert b"Django REST framework" in browser.content
    curl = client.get("/tasks", HTTP_HOST="127.0.0.1", HTTP_ACCEPT="*/*")
    assert curl["Content-Type"] == "application/json"
    assert curl.json() == []
