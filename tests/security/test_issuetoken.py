"""`manage.py issuetoken`: prints a token that opens writes on a public bind."""

from __future__ import annotations

import io
import re

import pytest
from django.contrib.auth.models import User
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import CommandError, call_command
from django.test import Client

from tasks_app.api import permissions
from tests.security.test_permissions import HASH_WASM

pytestmark = pytest.mark.django_db


def issue(*args: str) -> str:
    out, err = io.StringIO(), io.StringIO()
    call_command("issuetoken", *args, stdout=out, stderr=err)
    return out.getvalue().strip()


def submit(client: Client, task_id: str, key: str) -> int:
    data = {"id": task_id, "wasm": SimpleUploadedFile("hash.wasm", HASH_WASM)}
    return client.post("/tasks", data, HTTP_AUTHORIZATION=f"Token {key}").status_code


def test_create_user_prints_a_token_that_opens_writes(
    client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(permissions, "http_bind", "0.0.0.0")
    key = issue("ci", "--create-user")
    assert re.fullmatch(r"[0-9a-f]{40}", key)
    user = User.objects.get(username="ci")
    assert not user.has_usable_password()  # a token user, not an admin login
    assert not user.is_staff
    assert submit(client, "with-token", key) == 201


def test_issuing_again_prints_the_same_token_and_rotate_replaces_it(
    client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(permissions, "http_bind", "0.0.0.0")
    first = issue("ci", "--create-user")
    assert issue("ci") == first
    rotated = issue("ci", "--rotate")
    assert rotated != first
    assert submit(client, "old-token", first) == 401
    assert submit(client, "new-token", rotated) == 201


def test_unknown_user_needs_create_user() -> None:
    with pytest.raises(CommandError, match="no user 'nobody'; pass --create-user"):
        issue("nobody")
    assert not User.objects.filter(username="nobody").exists()


def test_inactive_user_gets_no_token() -> None:
    User.objects.create_user("gone", is_active=False)
    with pytest.raises(CommandError, match="inactive"):
        issue("gone")
