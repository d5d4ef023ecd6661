from typing import Any

from django.http import HttpRequest, HttpResponseBase
from django.urls import re_path
from django.views.decorators.csrf import csrf_exempt

from tasks_app.api.json_tasks import TaskBatchView
from tasks_app.api.modules import ModuleDetailView, ModuleListView
from tasks_app.api.schedules import ScheduleDetailView, ScheduleListView, ScheduleTriggerView
from tasks_app.api.views import RunOutputView, TaskDetailView, TaskListView
from tasks_app.api.workers import WorkerListView

_batch = TaskBatchView.as_view()
_detail = TaskDetailView.as_view()


@csrf_exempt
def batch_or_task(request: HttpRequest, **kwargs: Any) -> HttpResponseBase:
    """`POST /tasks/batch` is the batch; any other method on that path is
    the task named `batch` (a valid id), as on any /tasks/<id>."""
    if request.method == "POST":
        return _batch(request)
    return _detail(request, task_id="batch")


# The OpenAPI document lists this path's batch operation (drf-spectacular
# reads the view class from here).
batch_or_task.cls = TaskBatchView  # type: ignore[attr-defined]  # DRF's mark of a view's class
batch_or_task.initkwargs = {}  # type: ignore[attr-defined]  # as as_view() sets it

# Both /tasks and /tasks/ answer, without a redirect (the seed's curl has no slash).
urlpatterns = [
    re_path(r"^tasks/?$", TaskListView.as_view(), name="task-list"),
    re_path(r"^tasks/batch/?$", batch_or_task, name="task-batch"),
    re_path(r"^tasks/(?P<task_id>[^/]+)/?$", TaskDetailView.as_view(), name="task-detail"),
    re_path(
        r"^tasks/(?P<task_id>[^/]+)/runs/(?P<index>[0-9]{1,9})/output/?$",
        RunOutputView.as_view(),
        name="task-run-output",
    ),
    re_path(r"^schedules/?$", ScheduleListView.as_view(), name="schedule-list"),
    re_path(
        r"^schedules/(?P<name>[^/@]+)/trigger/?$",
        ScheduleTriggerView.as_view(),
        name="schedule-trigger",
    ),
    re_path(
        r"^schedules/(?P<name>[^/@]+)/?$", ScheduleDetailView.as_view(), name="schedule-detail"
    ),
    re_path(r"^modules/?$", ModuleListView.as_view(), name="module-list"),
    re_path(r"^modules/(?P<sha256>[^/]+)/?$", ModuleDetailView.as_view(), name="module-detail"),
    re_path(r"^workers/?$", WorkerListView.as_view(), name="worker-list"),
]
