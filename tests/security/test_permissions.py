"""REST permissions: anonymous writes only on a loopback bind (or when
configured), tokens for everyone else, reads optionally closed, CSRF for
session users, a staff login for the admin."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
from pathlib import Path

import pytest
from django.contrib.auth.models import User
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from rest_framework.authtoken.models import Token

from tasks_app.api import permissions
from tasks_app.api.permissions import is_loopback, parse_mode
from tasks_app.conf import WriteAuth
from tasks_app.models import Task

PROJECT_ROOT = Path(__file__).resolve().parents[2]
HASH_WASM = (PROJECT_ROOT / "hash.wasm").read_bytes()


def form(task_id: str = "task1") -> dict[str, object]:
    return {
        "id": task_id,
        "description": "Hash puzzle",
        "complete": "0",
        "duration": "5",
        "start": "1",
        "delay": "2",
        "repeats": "3",
        "input": "0",
        "difficulty": "3",
        "wasm": SimpleUploadedFile("hash.wasm", HASH_WASM),
    }


def post(client: Client, task_id: str = "task1", **extra: str):
    return client.post("/tasks", form(task_id), **extra)


@pytest.fixture
def token(db: None) -> str:
    user = User.objects.create_user("ci")
    return Token.objects.create(user=user).key


@pytest.fixture
def public_bind(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(permissions, "http_bind", "0.0.0.0")


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("127.0.0.1", True),
        ("127.8.9.10", True),
        ("::1", True),
        ("[::1]", True),
        ("localhost", True),
        ("LOCALHOST", True),
        ("0.0.0.0", False),
        ("::", False),
        ("[::]", False),
        ("192.168.1.10", False),
        ("10.0.0.1", False),
        ("gateway.example", False),
        ("", False),
        (None, False),
    ],
)
def test_only_loopback_addresses_count_as_loopback(host: str | None, loopback: bool) -> None:
    assert is_loopback(host) is loopback


def test_mode_words() -> None:
    assert [parse_mode(w) for w in ("auto", "", "true", "1", "yes", "false", "0", "off")] == [
        None,
        None,
        True,
        True,
        True,
        False,
        False,
        False,
    ]
    with pytest.raises(ValueError, match="true, false or auto"):
        parse_mode("sometimes")


@pytest.mark.django_db
def test_seed_curl_works_anonymously_on_the_loopback_default(client: Client) -> None:
    # The autouse fixture in tests/conftest.py binds "127.0.0.1", as rungateway does.
    response = post(client)
    assert response.status_code == 201, response.content
    assert client.get("/tasks").status_code == 200


@pytest.mark.django_db
@pytest.mark.parametrize("bind", ["0.0.0.0", "::", "192.168.1.10", None])
def test_anonymous_write_is_refused_when_not_bound_to_loopback(
    client: Client, monkeypatch: pytest.MonkeyPatch, bind: str | None
) -> None:
    if bind is None:
        # daphne/uvicorn started without rungateway
        monkeypatch.setattr(permissions, "http_bind", None)
    else:
        monkeypatch.setattr(permissions, "http_bind", bind)
    response = post(client)
    assert response.status_code == 401, response.content
    assert response.headers["WWW-Authenticate"] == "Token"
    assert response.json()["field"] == "request"
    assert "credentials" in response.json()["problem"]
    assert not Task.objects.exists()
    # Reads stay open by default.
    assert client.get("/tasks").status_code == 200


@pytest.mark.django_db
def test_token_holder_may_write_on_a_public_bind(
    client: Client, public_bind: None, token: str
) -> None:
    response = post(client, HTTP_AUTHORIZATION=f"Token {token}")
    assert response.status_code == 201, response.content
    assert Task.objects.filter(pk="task1").exists()


@pytest.mark.django_db
def test_a_wrong_token_is_refused_even_where_anonymous_writes_are_allowed(client: Client) -> None:
    response = post(client, HTTP_AUTHORIZATION="Token " + "0" * 40)
    assert response.status_code == 401
    assert "Invalid token" in response.json()["problem"]
    assert not Task.objects.exists()


@pytest.mark.django_db
def test_an_inactive_users_token_is_refused(client: Client, public_bind: None) -> None:
    user = User.objects.create_user("gone", is_active=False)
    key = Token.objects.create(user=user).key
    response = post(client, HTTP_AUTHORIZATION=f"Token {key}")
    assert response.status_code == 401
    assert not Task.objects.exists()


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("mode", "bind", "expected"),
    [
        ("false", "0.0.0.0", 201),  # explicitly open, even on a public bind
        ("true", "127.0.0.1", 401),  # explicitly closed, even on loopback
        ("auto", "127.0.0.1", 201),
        ("auto", "0.0.0.0", 401),
    ],
)
def test_writes_need_auth_setting_overrides_the_bind_rule(
    client: Client,
    settings,
    monkeypatch: pytest.MonkeyPatch,
    mode: str,
    bind: str,
    expected: int,
) -> None:
    settings.WW_TASKS = dataclasses.replace(settings.WW_TASKS, writes_need_auth=WriteAuth(mode))
    monkeypatch.setattr(permissions, "http_bind", bind)
    assert post(client).status_code == expected


@pytest.mark.django_db
def test_reads_can_be_restricted_too(
    client: Client,
    settings,
    token: str,
) -> None:
    settings.WW_TASKS = dataclasses.replace(settings.WW_TASKS, reads_need_auth=True)
    assert post(client).status_code == 201  # loopback: anonymous writes still allowed
    for path in ("/tasks", "/tasks/", "/tasks/task1"):
        anonymous = client.get(path)
        assert anonymous.status_code == 401, path
        assert anonymous.headers["WWW-Authenticate"] == "Token"
        assert "task1" not in anonymous.content.decode()
        authorized = client.get(path, HTTP_AUTHORIZATION=f"Token {token}")
        assert authorized.status_code == 200, path


@pytest.mark.django_db
def test_session_users_need_a_csrf_token_but_anonymous_curl_does_not(
    public_bind: None,
) -> None:
    User.objects.create_superuser("admin", "admin@example.com", "pw-for-tests")
    browser = Client(enforce_csrf_checks=True)
    assert browser.login(username="admin", password="pw-for-tests")
    # A logged-in browser tricked into posting cross-site has no CSRF token.
    forged = post(browser, "from-evil-site")
    assert forged.status_code == 403
    assert "CSRF" in forged.json()["problem"]
    assert not Task.objects.exists()
    # The same browser with the CSRF cookie and header (what the browsable API sends).
    browser.get("/admin/")
    csrf = browser.cookies["csrftoken"].value
    ok = post(browser, "from-staff", HTTP_X_CSRFTOKEN=csrf)
    assert ok.status_code == 201, ok.content


@pytest.mark.django_db
def test_anonymous_post_with_csrf_enforced_still_works_on_loopback() -> None:
    curl = Client(enforce_csrf_checks=True)
    assert post(curl).status_code == 201


@pytest.mark.django_db
def test_admin_always_needs_a_staff_login(client: Client, token: str) -> None:
    # Loopback bind (the default fixture): anonymous REST writes are allowed,
    # the admin is not.
    for path in ("/admin/", "/admin/tasks_app/task/"):
        response = client.get(path)
        assert response.status_code == 302, path
        assert response.headers["Location"].startswith("/admin/login/")
    # An API token is not an admin login.
    response = client.get("/admin/", HTTP_AUTHORIZATION=f"Token {token}")
    assert response.status_code == 302
    # Nor is a non-staff user's password.
    User.objects.create_user("plain", password="pw-for-tests")
    assert client.login(username="plain", password="pw-for-tests")
    assert client.get("/admin/").status_code == 302


def test_an_unknown_writes_need_auth_value_stops_the_process(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "manage.py", "check"],
        cwd=PROJECT_ROOT,
        env={
            "PATH": "/usr/bin:/bin",
            "WW_STATE_DIR": str(tmp_path),
            "DJANGO_SETTINGS_MODULE": "wwproject.settings",
            "WW_WRITES_NEED_AUTH": "maybe",
        },
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode != 0
    assert "WW_WRITES_NEED_AUTH must be auto, true or false, not 'maybe'" in proc.stderr


@pytest.mark.django_db
def test_requests_for_unknown_host_names_are_refused(client: Client) -> None:
    # ALLOWED_HOSTS (DJANGO_ALLOWED_HOSTS) guards against Host-header poisoning.
    assert client.get("/tasks", HTTP_HOST="evil.example").status_code == 400
    assert post(client, HTTP_HOST="evil.example").status_code == 400
    assert not Task.objects.exists()


@pytest.mark.django_db
def test_browsable_api_works_for_anonymous_and_token_users(client: Client, token: str) -> None:
    page = client.get("/tasks", HTTP_ACCEPT="text/html")
    assert page.status_code == 200
    assert "text/html" in page.headers["Content-Type"]
    page = client.get("/tasks", HTTP_ACCEPT="text/html", HTTP_AUTHORIZATION=f"Token {token}")
    assert page.status_code == 200
