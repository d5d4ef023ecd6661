"""wwproject.settings_production passes Django's deployment checklist
(`manage.py check --deploy`) and refuses to start without a real secret key."""

from __future__ import annotations

import secrets
import subprocess
import sys
from pathlib import Path

import pytest

PROJECT_ROOT = Path(__file__).resolve().parents[2]


def manage(tmp_path: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=PROJECT_ROOT,
        env={
            "PATH": "/usr/bin:/bin",
            "WW_STATE_DIR": str(tmp_path),
            "DJANGO_SETTINGS_MODULE": "wwproject.settings_production",
            **env,
        },
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_check_deploy_reports_no_issues(tmp_path: Path) -> None:
    key = secrets.token_urlsafe(50)
    proc = manage(tmp_path, "check", "--deploy", "--fail-level", "WARNING", DJANGO_SECRET_KEY=key)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "System check identified no issues" in proc.stdout
    assert not (tmp_path / "secret-key").exists()  # no development key was made


def test_production_settings_are_hardened(tmp_path: Path) -> None:
    code = (
        "from django.conf import settings as s; "
        "print(s.DEBUG, s.SECURE_SSL_REDIRECT, s.SESSION_COOKIE_SECURE, s.CSRF_COOKIE_SECURE, "
        "s.SECURE_HSTS_SECONDS >= 31536000, s.WW_TASKS.writes_need_auth, s.ALLOWED_HOSTS, "
        "s.CSRF_TRUSTED_ORIGINS)"
    )
    proc = manage(
        tmp_path,
        "shell",
        "-c",
        code,
        DJANGO_SECRET_KEY=secrets.token_urlsafe(50),
        DJANGO_DEBUG="1",  # ignored in production
        DJANGO_ALLOWED_HOSTS="ww.example.org",
        DJANGO_CSRF_TRUSTED_ORIGINS="https://ww.example.org",
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip().splitlines()[-1] == (
        "False True True True True true ['ww.example.org'] ['https://ww.example.org']"
    )


@pytest.mark.parametrize(
    ("key", "complaint"),
    [
        (None, "DJANGO_SECRET_KEY must be set for production"),
        ("short-key", "DJANGO_SECRET_KEY is too weak"),
        ("a" * 60, "DJANGO_SECRET_KEY is too weak"),
        ("django-insecure-" + secrets.token_urlsafe(50), "DJANGO_SECRET_KEY is too weak"),
    ],
    # Stable ids: a random key in the id would differ between pytest-xdist's workers.
    ids=["missing", "short", "one-letter", "django-insecure"],
)
def test_a_missing_or_weak_secret_key_is_refused(
    tmp_path: Path, key: str | None, complaint: str
) -> None:
    env = {} if key is None else {"DJANGO_SECRET_KEY": key}
    proc = manage(tmp_path, "check", **env)
    assert proc.returncode != 0
    assert complaint in proc.stderr


def test_the_development_key_file_is_refused(tmp_path: Path) -> None:
    dev_key = secrets.token_urlsafe(50)
    (tmp_path / "secret-key").write_text(dev_key)
    proc = manage(tmp_path, "check", DJANGO_SECRET_KEY=dev_key)
    assert proc.returncode != 0
    assert "is the development key" in proc.stderr
