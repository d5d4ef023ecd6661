"""OpenAPI 3 for the REST API at /api/schema/, Swagger UI at /api/docs/
(served without a CDN), and DRF's browsable API for browsers while curl
keeps getting JSON."""

from __future__ import annotations

import io

import pytest
import yaml
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
    assert form["properties"]["wasm"] == {"type": "string", "format": "binary"}
    assert set(form["required"]) >= {"id", "wasm"}
    assert set(post["responses"]) >= {"201", "400", "409", "413"}
    error = schema["components"]["schemas"]["Error"]
    assert set(error["properties"]) >= {"field", "problem", "detail"}


def test_task_detail_shape_lists_runs_and_attempts(schema: dict) -> None:
    detail = schema["components"]["schemas"]["TaskDetail"]["properties"]
    assert detail["runs"]["type"] == "array"
    run = schema["components"]["schemas"][detail["runs"]["items"]["$ref"].rsplit("/", 1)[-1]]
    assert set(run["properties"]) >= {"index", "due_at", "state", "worker", "result", "attempts"}


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
