"""Production settings: ``DJANGO_SETTINGS_MODULE=wwproject.settings_production``.

Everything in wwproject.settings, hardened as Django's deployment checklist
asks (``manage.py check --deploy`` reports no issues with these):

- ``DJANGO_SECRET_KEY`` must come from the environment: at least 50
  characters, at least 5 distinct ones, not Django's ``django-insecure-``
  placeholder. The key file made in the state dir for development is refused.
- ``DEBUG`` is off, whatever ``DJANGO_DEBUG`` says.
- HTTPS only: plain HTTP is redirected, cookies are ``Secure``, HSTS is sent.
  The gateway itself speaks HTTP, so put a TLS-terminating proxy in front and
  set ``DJANGO_SECURE_PROXY_SSL_HEADER=1`` if it sets ``X-Forwarded-Proto``.
  ``DJANGO_SECURE_SSL_REDIRECT=0`` turns the redirect off when the proxy does it.
- ``DJANGO_ALLOWED_HOSTS`` and ``DJANGO_CSRF_TRUSTED_ORIGINS`` (comma
  separated) name the public host names and ``https://`` origins.
- REST writes need a token unless ``WW_WRITES_NEED_AUTH`` says otherwise.
"""

from __future__ import annotations

import os

from django.core.exceptions import ImproperlyConfigured

from tasks_app.conf import TasksSettings, WriteAuth
from tasks_app.settings_spec import env_value
from wwproject.settings import *  # noqa: F403
from wwproject.settings import STATE_DIR

_MIN_KEY_LENGTH = 50
_MIN_KEY_CHARACTERS = 5


def _production_secret_key() -> str:
    key = os.environ.get("DJANGO_SECRET_KEY", "")
    if not key:
        raise ImproperlyConfigured(
            "DJANGO_SECRET_KEY must be set for production (at least 50 random characters, "
            "e.g. from `python -c 'import secrets; print(secrets.token_urlsafe(50))'`)"
        )
    if (
        len(key) < _MIN_KEY_LENGTH
        or len(set(key)) < _MIN_KEY_CHARACTERS
        or key.startswith("django-insecure-")
    ):
        raise ImproperlyConfigured(
            f"DJANGO_SECRET_KEY is too weak: it needs at least {_MIN_KEY_LENGTH} characters, "
            f"{_MIN_KEY_CHARACTERS} distinct ones, and no 'django-insecure-' prefix"
        )
    dev_key = STATE_DIR / "secret-key"
    if dev_key.exists() and dev_key.read_text().strip() == key:
        raise ImproperlyConfigured(
            f"DJANGO_SECRET_KEY is the development key from {dev_key}; generate a new one"
        )
    return key


def _env_list(name: str) -> list[str]:
    return [item.strip() for item in os.environ.get(name, "").split(",") if item.strip()]


SECRET_KEY = _production_secret_key()
SECRET_KEY_FALLBACKS: list[str] = []
DEBUG = False

# HTTPS everywhere.
SECURE_SSL_REDIRECT = env_value(os.environ, "DJANGO_SECURE_SSL_REDIRECT", bool, True)
if env_value(os.environ, "DJANGO_SECURE_PROXY_SSL_HEADER", bool, False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_HSTS_SECONDS = env_value(os.environ, "DJANGO_SECURE_HSTS_SECONDS", int, 365 * 24 * 3600)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_value(
    os.environ, "DJANGO_SECURE_HSTS_INCLUDE_SUBDOMAINS", bool, True
)
SECURE_HSTS_PRELOAD = env_value(os.environ, "DJANGO_SECURE_HSTS_PRELOAD", bool, True)
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"

# Cookies: only over HTTPS, never to scripts (the CSRF cookie stays readable:
# the browsable API's forms need it).
SESSION_COOKIE_SECURE = True
SESSION_COOKIE_HTTPONLY = True
CSRF_COOKIE_SECURE = True
CSRF_TRUSTED_ORIGINS = _env_list("DJANGO_CSRF_TRUSTED_ORIGINS")
if hosts := _env_list("DJANGO_ALLOWED_HOSTS"):
    ALLOWED_HOSTS = hosts

# A public deployment takes writes only from token holders (or staff sessions),
# unless the operator says otherwise explicitly.
WW_TASKS = TasksSettings.from_env(os.environ, writes_need_auth=WriteAuth.TRUE)
