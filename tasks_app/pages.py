"""The status page at `/`: tasks with progress bars and the worker pool,
kept live by the run events of `/ws/tasks/`. The page draws what
`GET /api/status` returns and asks again whenever an event arrives."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from cluster_app.models import WorkerNode
from tasks_app import selectors
from tasks_app.progress import task_state

STATUS_TASKS = 200  # the most recent tasks the page shows


@require_GET
def status_page(request: HttpRequest) -> HttpResponse:
    return render(request, "tasks_app/status.html", {"limit": STATUS_TASKS})


@require_GET
def status_json(request: HttpRequest) -> JsonResponse:
    """The most recent tasks with their run counts, and every known worker."""
    return JsonResponse({"tasks": recent_tasks(STATUS_TASKS), "workers": workers()})


def recent_tasks(limit: int) -> list[dict[str, Any]]:
    tasks = selectors.task_list().order_by("-received_at", "-id")[:limit]
    return [
        {
            "id": task.id,
            "description": task.description,
            "runs": task.run_count,
            "finished": task.runs_finished,
            "succeeded": task.completions,
            "failed": task.runs_failed,
            "running": task.runs_running,
            "state": task_state(
                runs=task.run_count,
                finished=task.runs_finished,
                succeeded=task.completions,
                failed=task.runs_failed,
                running=task.runs_running,
            ),
            "next_due_at": task.next_due_at.isoformat() if task.next_due_at else None,
            "received_at": task.received_at.isoformat(),
        }
        for task in tasks
    ]


def workers() -> list[dict[str, Any]]:
    return [
        {
            "peer_id": w.peer_id,
            "address": w.address,
            "concurrency": w.concurrency,
            "in_flight": w.in_flight,
            "completed": w.completed,
            "failed": w.failed,
            "connected": w.connected,
            "last_seen": w.last_seen.isoformat(),
        }
        for w in WorkerNode.objects.all()
    ]
