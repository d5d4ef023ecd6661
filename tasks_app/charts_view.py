"""`GET /api/charts`: the live charts' series (tasks_app.charts), for the
status page to poll. A read like `GET /api/status`, under the same rule
(`WW_READS_NEED_AUTH`); at most `charts.POINTS` samples, whatever the load."""

from __future__ import annotations

from django.http import HttpRequest, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from tasks_app import charts
from tasks_app.pages import may_read, refused_json


@require_GET
@never_cache
def charts_json(request: HttpRequest) -> JsonResponse:
    if not may_read(request):
        return refused_json()
    return JsonResponse(charts.SERIES.as_json())
