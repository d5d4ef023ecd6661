"""ASGI entry point: HTTP (REST, admin) through Django, behind a request
size limit that answers 413 before reading an oversized body; static files
(admin, browsable API, Swagger UI, status page) served by the same process;
WebSockets (live run events) through Channels.

`make_application(runtime)` builds it for a process that says what it runs
(`rungateway` finds it by the `ASGI_APPLICATION_FACTORY` setting and gives
it the gateway's runtime); `application` is the one a plain ASGI server
serves (`daphne wwproject.asgi:application`: no scheduler in the process).
"""

from __future__ import annotations

import os
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "wwproject.settings")
django.setup(set_prefix=False)

from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from django.conf import settings  # noqa: E402
from django.contrib.staticfiles.handlers import ASGIStaticFilesHandler  # noqa: E402

from cluster_app.body_limit import BodySizeLimit  # noqa: E402
from tasks_app.api.lane import submission_lane  # noqa: E402
from tasks_app.api.waiting import TaskWaiting  # noqa: E402
from tasks_app.routing import origin_checked, websocket_urlpatterns  # noqa: E402
from wwproject.compat_django import ThreadedDjangoHandler  # noqa: E402


class Runtime(Protocol):
    """What the process serving the application tells it."""

    @property
    def before_response(self) -> Callable[[], Awaitable[None]]:
        """Awaited before a Django response is written (a scheduler on this
        loop lets the runs a request handed it go out first)."""
        ...


def make_application(runtime: Runtime | None = None) -> Any:
    return _application(_django_handler(runtime))


def _django_handler(runtime: Runtime | None) -> ThreadedDjangoHandler:
    return ThreadedDjangoHandler(
        threads=settings.WW_PROJECT.http_threads,
        before_response=None if runtime is None else runtime.before_response,
    )


def _application(django_handler: ThreadedDjangoHandler) -> Any:
    return ProtocolTypeRouter(
        {
            "http": BodySizeLimit(
                # `GET /tasks/<id>?wait=S` waits on the loop, not on a
                # request thread (tasks_app/api/waiting.py).
                TaskWaiting(
                    # Plain `POST /tasks` answered on the loop where what is
                    # configured allows it (WW_FAST_LANE, tasks_app/api/lane.py).
                    submission_lane(
                        ASGIStaticFilesHandler(django_handler),
                        in_thread=django_handler.in_thread,
                        get_response=django_handler.get_response,
                    ),
                    max_waiters=settings.WW_TASKS.wait_max_waiters,
                    recheck=settings.WW_TASKS.wait_recheck_seconds,
                ),
                limit=settings.WW_TASKS.request_body_max_bytes,
            ),
            "websocket": origin_checked(URLRouter(websocket_urlpatterns)),
        }
    )


django_application = _django_handler(None)
application = _application(django_application)
