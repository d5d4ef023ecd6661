"""The admin a person can run the system from: tasks with progress, their
runs and attempts inline, filters by state, and the actions an operator
needs (cancel a task, run its failed runs again)."""

from __future__ import annotations

from django.contrib import admin, messages
from django.db.models import F, QuerySet
from django.http import HttpRequest
from django.utils.html import format_html, format_html_join

from tasks_app import notify, selectors, services
from tasks_app.models import Attempt, Iteration, Module, Task
from tasks_app.progress import task_state


def _last_attempt(run: Iteration) -> Attempt | None:
    attempts = list(run.attempts.all())  # prefetched, in number order
    return attempts[-1] if attempts else None


def _seconds(start: object, end: object) -> str:
    if start is None or end is None:
        return "-"
    return f"{(end - start).total_seconds():.3f} s"  # type: ignore[operator]


class IterationInline(admin.TabularInline):
    """Each run with its last attempt's worker and timings; the run's own
    page (the link) lists every attempt."""

    model = Iteration
    extra = 0
    can_delete = False
    show_change_link = True
    fields = [
        "index",
        "due_at",
        "state",
        "worker",
        "attempt_count",
        "started_at",
        "finished_at",
        "run_time",
        "result",
        "error",
    ]
    readonly_fields = fields

    def get_queryset(self, request: HttpRequest) -> QuerySet[Iteration]:
        return super().get_queryset(request).prefetch_related("attempts")

    def has_add_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    @admin.display(description="worker")
    def worker(self, run: Iteration) -> str:
        last = _last_attempt(run)
        return last.worker_peer_id if last else "-"

    @admin.display(description="attempts")
    def attempt_count(self, run: Iteration) -> int:
        return len(run.attempts.all())

    @admin.display(description="started")
    def started_at(self, run: Iteration) -> object:
        last = _last_attempt(run)
        return last.started_at if last and last.started_at else "-"

    @admin.display(description="run time")
    def run_time(self, run: Iteration) -> str:
        last = _last_attempt(run)
        return _seconds(last.started_at, last.finished_at) if last else "-"


class AttemptInline(admin.TabularInline):
    model = Attempt
    extra = 0
    can_delete = False
    fields = [
        "number",
        "worker_peer_id",
        "sent_at",
        "started_at",
        "finished_at",
        "outcome",
        "result",
        "error",
        "exit_code",
    ]
    readonly_fields = fields

    def has_add_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


class TaskStateFilter(admin.SimpleListFilter):
    title = "state"
    parameter_name = "state"

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin) -> list[tuple[str, str]]:
        return [
            ("scheduled", "scheduled"),
            ("running", "running"),
            ("succeeded", "succeeded"),
            ("failed", "failed"),
            ("cancelled", "cancelled"),
        ]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Task]) -> QuerySet[Task]:
        value = self.value()
        if value == "scheduled":
            return queryset.filter(runs_finished=0, runs_running=0)
        if value == "running":
            return queryset.filter(runs_finished__lt=F("runs_total")).exclude(
                runs_finished=0, runs_running=0
            )
        if value == "succeeded":
            return queryset.filter(completions=F("runs_total"))
        if value == "failed":
            return queryset.filter(runs_failed__gt=0)
        if value == "cancelled":
            return queryset.filter(cancelled_at__isnull=False)
        return queryset


@admin.register(Task)
class TaskAdmin(admin.ModelAdmin):
    list_display = [
        "id",
        "description",
        "progress",
        "state",
        "next_due_at",
        "received_at",
        "module",
    ]
    list_filter = [TaskStateFilter, "received_at"]
    search_fields = ["id", "description"]
    readonly_fields = [
        "id",
        "module",
        "received_at",
        "progress",
        "state",
        "duration",
        "start",
        "delay",
        "repeats",
        "input",
        "difficulty",
        "attempts",
    ]
    fields = ["description", *readonly_fields]
    inlines = [IterationInline]
    actions = ["cancel_tasks", "rerun_failed_runs"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[Task]:
        return selectors.task_list()

    @admin.action(description="Cancel the selected tasks (runs not started end cancelled)")
    def cancel_tasks(self, request: HttpRequest, queryset: QuerySet[Task]) -> None:
        cancelled = running = 0
        for task_id in queryset.values_list("pk", flat=True):
            outcome = services.cancel_task(task_id=task_id)
            if outcome.running:
                notify.task_cancelled(task_id)  # the gateway interrupts the running ones
            cancelled += outcome.cancelled
            running += len(outcome.running)
        self.message_user(
            request,
            f"{cancelled} runs cancelled; {running} running runs will end cancelled "
            "when the gateway has stopped them.",
            messages.SUCCESS,
        )

    @admin.action(description="Run the failed runs of the selected tasks again")
    def rerun_failed_runs(self, request: HttpRequest, queryset: QuerySet[Task]) -> None:
        total = 0
        for task_id in queryset.values_list("pk", flat=True):
            queued = services.rerun_failed(task_id=task_id)
            if queued:
                notify.task_submitted(task_id)  # the scheduler loads the task's pending runs
            total += queued
        self.message_user(request, f"{total} failed runs queued again.", messages.SUCCESS)

    @admin.display(description="attempts")
    def attempts(self, task: Task) -> str:
        """Every attempt of every run: worker, timings, outcome, result or error."""
        rows = (
            Attempt.objects.filter(iteration__task=task)
            .select_related("iteration")
            .order_by("iteration__index", "number")
        )
        if not rows:
            return "-"
        body = format_html_join(
            "",
            "<tr><td>#{}</td><td>{}</td><td><code>{}</code></td><td>{}</td><td>{}</td>"
            "<td>{}</td><td>{}</td><td>{}</td></tr>",
            (
                (
                    a.iteration.index,
                    a.number,
                    a.worker_peer_id or "-",
                    a.sent_at,
                    a.started_at or "-",
                    _seconds(a.started_at, a.finished_at),
                    a.outcome,
                    (a.error or a.result)[:200],
                )
                for a in rows
            ),
        )
        return format_html(
            "<table><tr><th>run</th><th>try</th><th>worker</th><th>sent</th><th>started</th>"
            "<th>run time</th><th>outcome</th><th>result or error</th></tr>{}</table>",
            body,
        )

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # tasks come in through POST /tasks (it validates the module)

    @admin.display(description="progress")
    def progress(self, task: Task) -> str:
        return f"{task.completions} / {task.run_count}"  # type: ignore[attr-defined]

    @admin.display(description="state")
    def state(self, task: Task) -> str:
        return task_state(
            runs=task.run_count,
            finished=task.runs_finished,  # type: ignore[attr-defined]
            succeeded=task.completions,  # type: ignore[attr-defined]
            failed=task.runs_failed,  # type: ignore[attr-defined]
            running=task.runs_running,  # type: ignore[attr-defined]
        )

    @admin.display(description="next due", ordering="next_due_at")
    def next_due_at(self, task: Task) -> object:
        return task.next_due_at  # type: ignore[attr-defined]


@admin.register(Iteration)
class IterationAdmin(admin.ModelAdmin):
    list_display = ["__str__", "task", "index", "due_at", "state", "result", "finished_at"]
    list_filter = ["state"]
    search_fields = ["task__id"]
    readonly_fields = ["task", "index", "due_at", "state", "result", "error", "finished_at"]
    inlines = [AttemptInline]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False


@admin.register(Attempt)
class AttemptAdmin(admin.ModelAdmin):
    list_display = [
        "__str__",
        "worker_peer_id",
        "outcome",
        "sent_at",
        "started_at",
        "finished_at",
        "result",
    ]
    list_filter = ["outcome"]
    search_fields = ["iteration__task__id", "worker_peer_id"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


@admin.register(Module)
class ModuleAdmin(admin.ModelAdmin):
    list_display = ["sha256", "kind", "size", "created_at"]
    list_filter = ["kind"]
    exclude = ["wasm"]
    readonly_fields = ["sha256", "kind", "size", "created_at"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False
