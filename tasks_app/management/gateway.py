"""How `submit` and `tasks` reach a gateway: the --url / --token options
and a `tasks_app.client.Client` made from them, whose errors become the
command's."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from django.conf import settings
from django.core.management.base import CommandError, CommandParser

from tasks_app.client import Client, ClientError


def add_gateway_options(parser: CommandParser) -> None:
    parser.add_argument(
        "--url",
        default=settings.WW_TASKS.url or f"http://{settings.WW_TASKS.http}",
        help="the gateway's base URL (default %(default)s; env WW_URL)",
    )
    parser.add_argument(
        "--token",
        default=settings.WW_TASKS.token,
        help="API token, sent as 'Authorization: Token TOKEN' (env WW_TOKEN)",
    )


@contextlib.contextmanager
def gateway(options: dict[str, Any]) -> Iterator[Client]:
    """A client of the gateway the options name, closed after the block; a
    ClientError in the block (a refusal: `METHOD PATH: STATUS DETAIL`, or
    no answer) ends the command with its message."""
    with Client(options["url"], options["token"] or None) as client:
        try:
            yield client
        except ClientError as exc:
            raise CommandError(str(exc)) from None
