"""The status pages: `/` lists tasks with progress bars segmented by run
state and the worker pool; `/status/tasks/<id>/` shows one task with a page
of its runs and their attempts. Both are kept live by the run events of
`/ws/tasks/` (`/ws/tasks/<id>/`): the status page draws what
`GET /api/status` returns and asks again whenever an event arrives; the task
page fetches itself again and swaps in its counts and runs.

They are reads like `GET /tasks`, so `WW_READS_NEED_AUTH` closes them to
anyone without a staff session or an API token."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from django.contrib.auth.views import redirect_to_login
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.http import require_GET
from rest_framework.authentication import TokenAuthentication
from rest_framework.exceptions import AuthenticationFailed

from tasks_app import page_reads
from tasks_app.api.permissions import reads_need_auth
from tasks_app.models import Task, WorkerNode
from tasks_app.page_reads import RunCounts
from tasks_app.progress import task_state

STATUS_TASKS = 200  # the most recent tasks the status page shows
STATUS_SCHEDULES = 100  # schedules the status page lists, by name
RUNS_PER_PAGE = 100  # a task page's runs; more are on the next pages
# A worker disconnected for longer than this is "gone": listed apart,
# folded, at most GONE_LISTED of them.
GONE_AFTER = timedelta(minutes=10)
GONE_LISTED = 50


def may_read(request: HttpRequest) -> bool:
    """Whether `request` may read the pages and their JSON (the charts'
    too: tasks_app.charts_view)."""
    if not reads_need_auth():
        return True
    user = getattr(request, "user", None)
    if user is not None and user.is_authenticated and user.is_active:
        return True
    try:
        return TokenAuthentication().authenticate(request) is not None  # type: ignore[arg-type]  # DRF's authenticate takes its Request; a Django request has what it reads
    except AuthenticationFailed:
        return False


def refused_json() -> JsonResponse:
    response = JsonResponse({"problem": "authentication required"}, status=401)
    response["WWW-Authenticate"] = "Token"
    return response


@require_GET
def status_page(request: HttpRequest) -> HttpResponse:
    if not may_read(request):
        return redirect_to_login(request.get_full_path(), reverse("admin:login"))
    return render(
        request,
        "tasks_app/status.html",
        {"limit": STATUS_TASKS, "gone_minutes": int(GONE_AFTER.total_seconds() // 60)},
    )


@require_GET
def status_json(request: HttpRequest) -> JsonResponse:
    """The most recent tasks with their runs counted by state, and the workers."""
    if not may_read(request):
        return refused_json()
    pool = page_reads.worker_pool(gone_after=GONE_AFTER, gone_limit=GONE_LISTED)
    return JsonResponse(
        {
            "tasks": [
                _task_row(task, counts) for task, counts in page_reads.recent_tasks(STATUS_TASKS)
            ],
            "workers": [_worker_row(w) for w in pool.current],
            "gone_workers": [_worker_row(w) for w in pool.gone],
            "gone_count": pool.gone_count,
            "schedules": page_reads.schedules(STATUS_SCHEDULES),
        }
    )


@require_GET
def task_page(request: HttpRequest, task_id: str) -> HttpResponse:
    """One task: its settings, its runs counted by state, and one page of
    its runs, each with every attempt."""
    if not may_read(request):
        return redirect_to_login(request.get_full_path(), reverse("admin:login"))
    task = _task_or_404(task_id)
    counts = page_reads.run_counts([task.pk])[task.pk]
    pages = max(1, -(-counts.total // RUNS_PER_PAGE))
    number = _page_number(request.GET.get("page"), pages)
    offset = (number - 1) * RUNS_PER_PAGE
    runs = page_reads.runs_page(task, offset=offset, limit=RUNS_PER_PAGE)
    return render(
        request,
        "tasks_app/task.html",
        {
            "task": task,
            "counts": counts,
            "state": _state(counts),
            "runs": runs,
            "page": number,
            "pages": pages,
            "first_index": offset,
            "last_index": offset + len(runs) - 1,
            "per_page": RUNS_PER_PAGE,
        },
    )


def _task_or_404(task_id: str) -> Task:
    task = Task.objects.filter(pk=task_id).first()
    if task is None:
        raise Http404(f"no task {task_id!r}")
    return task


def _page_number(raw: str | None, pages: int) -> int:
    try:
        number = int(raw or 1)
    except ValueError:
        number = 1
    return min(max(number, 1), pages)


def _state(counts: RunCounts) -> str:
    return task_state(
        runs=counts.total,
        finished=counts.finished,
        succeeded=counts.of("succeeded"),
        failed=counts.of("failed") + counts.of("timed_out"),
        running=counts.of("running"),
    )


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment else None


def _task_row(task: Task, counts: RunCounts) -> dict[str, Any]:
    return {
        "id": task.id,
        "url": reverse("status-task", args=[task.id]),
        "description": task.description,
        "runs": counts.total,
        "finished": counts.finished,
        "counts": {state: count for state, count, _ in counts.segments()},
        "state": _state(counts),
        "next_due_at": _iso(counts.next_due_at),
        "received_at": task.received_at.isoformat(),
    }


def _worker_row(w: WorkerNode) -> dict[str, Any]:
    return {
        "peer_id": w.peer_id,
        "address": w.address,
        "concurrency": w.concurrency,
        "in_flight": w.in_flight,
        "completed": w.completed,
        "failed": w.failed,
        "connected": w.connected,
        "last_seen": w.last_seen.isoformat(),
    }
