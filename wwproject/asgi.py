"""ASGI entry point: HTTP (REST, admin) through Django, behind a request
size limit that answers 413 before reading an oversized body; static files
(admin, browsable API, Swagger UI, status page) served by the same process;
WebSockets (live run events) through Channels."""

from __future__ import annotations

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "wwproject.settings")
django_application = get_asgi_application()

from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from django.conf import settings  # noqa: E402
from django.contrib.staticfiles.handlers import ASGIStaticFilesHandler  # noqa: E402

from tasks_app.routing import origin_checked, websocket_urlpatterns  # noqa: E402
from wwproject.limits import BodySizeLimit  # noqa: E402

application = ProtocolTypeRouter(
    {
        "http": BodySizeLimit(
            ASGIStaticFilesHandler(django_application),
            limit=settings.WW_MODULE_MAX_BYTES + 1024 * 1024,
        ),
        "websocket": origin_checked(URLRouter(websocket_urlpatterns)),
    }
)
