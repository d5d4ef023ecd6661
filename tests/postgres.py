"""A PostgreSQL database of a test's own on this machine's server (the
scale-out and history tests), dropped after; a missing server skips the
test, or fails it under CI=true (tests/ci.py)."""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import Iterator
from urllib.parse import urlsplit

import psycopg

from tests.ci import missing_dependency

POSTGRES = os.environ.get("WW_TEST_POSTGRES", "postgres://postgres@127.0.0.1:5432/postgres")


@contextlib.contextmanager
def fresh_database(prefix: str, *, needed_by: str = "this test") -> Iterator[str]:
    """A new, empty database named `<prefix>_<pid>_<random>`; its URL."""
    admin_url = urlsplit(POSTGRES)
    name = f"{prefix}_{os.getpid()}_{secrets.token_hex(3)}"
    try:
        admin = psycopg.connect(POSTGRES, autocommit=True, connect_timeout=5)
    except psycopg.OperationalError as exc:
        missing_dependency(
            f"PostgreSQL at {admin_url.hostname}:{admin_url.port} is not reachable ({exc}); "
            f"{needed_by} needs it"
        )
    with admin:
        admin.execute(f'CREATE DATABASE "{name}"')
        try:
            yield admin_url._replace(path=f"/{name}").geturl()
        finally:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
