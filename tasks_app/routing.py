"""WebSocket routes: live run events for every task, or for one."""

from __future__ import annotations

from typing import Any
from urllib.parse import ParseResult

from channels.security.websocket import OriginValidator
from django.conf import settings
from django.urls import re_path

from tasks_app.consumers import TaskEventsConsumer

websocket_urlpatterns = [
    re_path(r"^ws/tasks/?$", TaskEventsConsumer.as_asgi()),
    re_path(r"^ws/tasks/(?P<task_id>[^/]+)/?$", TaskEventsConsumer.as_asgi()),
]


class BrowserOriginValidator(OriginValidator):
    """A browser always sends Origin, so a page on another site cannot
    open our sockets (its origin is not an allowed host). Clients that are
    not browsers (the CLI, scripts) send none and are let in, as they are
    for the same data over GET /tasks."""

    def valid_origin(self, parsed_origin: ParseResult | None) -> bool:
        if parsed_origin is None:
            return True
        return super().valid_origin(parsed_origin)


def origin_checked(application: Any) -> BrowserOriginValidator:
    hosts = settings.ALLOWED_HOSTS
    if settings.DEBUG and not hosts:
        hosts = ["localhost", "127.0.0.1", "[::1]"]  # what Django allows then
    return BrowserOriginValidator(application, hosts)
