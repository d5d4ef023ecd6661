"""The admin a person can run the system from: tasks newest first with
their progress, filters by state, a task's runs and attempts, and the
actions an operator needs (cancel a task, run its failed runs again).

Rows are written by the API and the gateway, never edited here: every page
is read-only (no Save button), and the actions need the right to change
tasks."""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.contrib.admin.utils import quote, unquote
from django.db.models import Count, F, Q, QuerySet
from django.http import HttpRequest, HttpResponse
from django.urls import reverse
from django.utils.html import format_html, format_html_join
from django.utils.http import urlencode

from tasks_app import notify, page_reads, selectors, services, state_counts
from tasks_app.models import Attempt, Iteration, Module, Schedule, Task
from tasks_app.progress import task_state
from tasks_app.schedule_admin import ScheduleAdmin
from tasks_app.templatetags.ww_pages import short_peer

# The admin's left-hand app list takes a quarter of a 1280 px screen, which
# the runs and attempts tables need; the home page lists the same apps.
admin.site.enable_nav_sidebar = False
admin.site.site_header = "ww-scheduler admin"
admin.site.site_title = "ww-scheduler admin"
admin.site.index_title = "Tasks, runs and workers"

RUNS_SHOWN = 100  # a task page's runs (with their attempts); the rest via a link


class ReadOnlyAdmin(admin.ModelAdmin):
    """Rows this admin shows but does not write."""

    def has_add_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


class AttemptInline(admin.TabularInline):
    model = Attempt
    extra = 0
    can_delete = False
    _columns: tuple[str, ...] = (
        "number",
        "worker_short",
        "sent_at",
        "started_at",
        "finished_at",
        "outcome",
        "result",
        "error",
        "exit_code",
    )
    fields = _columns
    readonly_fields = _columns

    def has_add_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    @admin.display(description="worker")
    def worker_short(self, attempt: Attempt) -> str:
        return short_peer(attempt.worker_peer_id) or "-"


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
            return queryset.filter(runs_finished=0, runs_running=0)  # type: ignore[misc]  # annotated by selectors.task_list
        if value == "running":
            running = queryset.filter(runs_finished__lt=F("runs_total"))  # type: ignore[misc]  # annotated by selectors.task_list
            return running.exclude(runs_finished=0, runs_running=0)  # type: ignore[misc]  # annotated, as above
        if value == "succeeded":
            return queryset.filter(completions=F("runs_total"))  # type: ignore[misc]  # annotated by selectors.task_list
        if value == "failed":
            return queryset.filter(runs_failed__gt=0)  # type: ignore[misc]  # annotated by selectors.task_list
        if value == "cancelled":
            return queryset.filter(cancelled_at__isnull=False)
        return queryset


@admin.register(Task)
class TaskAdmin(ReadOnlyAdmin):
    list_display = [
        "id",
        "description",
        "progress",
        "state",
        "next_due_at",
        "received_at",
        "module_hash",
    ]
    list_filter = [TaskStateFilter, "received_at"]
    search_fields = ["id", "description"]
    ordering = ["-received_at", "-id"]  # newest first
    _columns: tuple[str, ...] = (
        "id",
        "description",
        "received_at",
        "cancelled_at",
        "state",
        "progress",
        "runs_by_state",
        "duration",
        "start",
        "delay",
        "repeats",
        "retries",
        "input",
        "difficulty",
        "module",
    )
    fields = _columns
    readonly_fields = _columns
    actions = ["cancel_tasks", "rerun_failed_runs"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[Task]:
        return selectors.task_list()

    def has_operate_permission(self, request: HttpRequest) -> bool:
        """Who may run the actions: whoever may change tasks (the rows
        themselves are still not edited by hand)."""
        return request.user.has_perm("tasks_app.change_task")

    def get_object(
        self, request: HttpRequest, object_id: str, from_field: str | None = None
    ) -> Task | None:
        """The task with its progress and its runs counted by state (none
        of it reads every run: tasks_app.state_counts)."""
        task = selectors.task_list().filter(pk=object_id).first()
        if task is None:
            return None
        task.run_counts = page_reads.RunCounts(  # type: ignore[attr-defined]  # progress set on the instance, as the listing's annotations are
            by_state=state_counts.by_state(task),
            next_due_at=task.next_due_at,  # type: ignore[attr-defined]  # annotated
        )
        return task

    def change_view(
        self,
        request: HttpRequest,
        object_id: str,
        form_url: str = "",
        extra_context: dict[str, Any] | None = None,
    ) -> HttpResponse:
        """The task's page, with its first RUNS_SHOWN runs and their attempts
        (a task may have 100,000 runs: the rest are a link away)."""
        task_id = unquote(object_id)  # the admin's URL quoting (":" is "_3A")
        task = Task.objects.filter(pk=task_id).first()
        runs = [] if task is None else page_reads.runs_page(task, offset=0, limit=RUNS_SHOWN)
        context = {
            **(extra_context or {}),
            "runs": runs,
            "attempts": [a for run in runs for a in run.attempts.all()],
            "all_runs_url": reverse("admin:tasks_app_iteration_changelist")
            + "?"
            + urlencode({"task__id__exact": task_id}),
            "status_url": reverse("status-task", args=[task_id]),
        }
        return super().change_view(request, object_id, form_url, context)

    @admin.action(
        description="Cancel the selected tasks (runs not started end cancelled)",
        permissions=["operate"],
    )
    def cancel_tasks(self, request: HttpRequest, queryset: QuerySet[Task]) -> None:
        cancelled = running = 0
        for task_id in queryset.values_list("pk", flat=True):
            outcome = services.cancel_task(task_id=task_id)  # tells the gateway too
            cancelled += outcome.cancelled
            running += len(outcome.running)
        self.message_user(
            request,
            f"{cancelled} runs cancelled; {running} running runs will end cancelled "
            "when the gateway has stopped them.",
            messages.SUCCESS,
        )

    @admin.action(
        description="Run the failed runs of the selected tasks again", permissions=["operate"]
    )
    def rerun_failed_runs(self, request: HttpRequest, queryset: QuerySet[Task]) -> None:
        total = 0
        for task_id in queryset.values_list("pk", flat=True):
            queued = services.rerun_failed(task_id=task_id)
            if queued:
                notify.task_submitted(task_id)  # the scheduler loads the task's pending runs
            total += queued
        self.message_user(request, f"{total} failed runs queued again.", messages.SUCCESS)

    @admin.display(description="progress")
    def progress(self, task: Task) -> str:
        return f"{task.completions} / {task.run_count}"  # type: ignore[attr-defined]  # progress set on the instance, as the listing's annotations are

    @admin.display(description="runs by state")
    def runs_by_state(self, task: Task) -> str:
        counts = task.run_counts  # type: ignore[attr-defined]  # get_object's
        return ", ".join(f"{n} {state.replace('_', ' ')}" for state, n, _ in counts.segments())

    @admin.display(description="state")
    def state(self, task: Task) -> str:
        return task_state(
            runs=task.run_count,
            finished=task.runs_finished,  # type: ignore[attr-defined]  # progress set on the instance, as the listing's annotations are
            succeeded=task.completions,  # type: ignore[attr-defined]  # progress set on the instance, as the listing's annotations are
            failed=task.runs_failed,  # type: ignore[attr-defined]  # progress set on the instance, as the listing's annotations are
            running=task.runs_running,  # type: ignore[attr-defined]  # progress set on the instance, as the listing's annotations are
        )

    @admin.display(description="next due", ordering="next_due_at")
    def next_due_at(self, task: Task) -> object:
        return task.next_due_at  # type: ignore[attr-defined]  # progress set on the instance, as the listing's annotations are

    @admin.display(description="module", ordering="module")
    def module_hash(self, task: Task) -> str:
        return task.module_id[:12]


class RunStateFilter(admin.SimpleListFilter):
    """Runs by state as every read shows them: a cancelled task's runs that
    still say `pending` (the settler has not reached them yet) are
    cancelled."""

    title = "state"
    parameter_name = "state"

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin) -> list[tuple[str, str]]:
        return list(Iteration.State.choices)

    def queryset(self, request: HttpRequest, queryset: QuerySet[Iteration]) -> QuerySet[Iteration]:
        value = self.value()
        if value is None:
            return queryset
        unsettled = Q(state=Iteration.State.PENDING, task__cancelled_at__isnull=False)
        if value == Iteration.State.PENDING:
            return queryset.filter(state=value).exclude(unsettled)
        if value == Iteration.State.CANCELLED:
            return queryset.filter(Q(state=value) | unsettled)
        return queryset.filter(state=value)


@admin.register(Iteration)
class IterationAdmin(ReadOnlyAdmin):
    list_display = ["__str__", "task", "index", "due_at", "shown_state", "result", "finished"]
    list_filter = [RunStateFilter]
    list_select_related = ["task"]
    search_fields = ["task__id"]
    _columns: tuple[str, ...] = (
        "task",
        "index",
        "due_at",
        "shown_state",
        "result",
        "error",
        "finished",
    )
    fields = _columns
    readonly_fields = _columns
    inlines = [AttemptInline]

    def _shown(self, run: Iteration) -> Iteration:
        state_counts.shown_as_cancelled(run.task, [run])
        return run

    @admin.display(description="state", ordering="state")
    def shown_state(self, run: Iteration) -> str:
        return str(self._shown(run).state)

    @admin.display(description="finished at", ordering="finished_at")
    def finished(self, run: Iteration) -> object:
        return self._shown(run).finished_at


@admin.register(Attempt)
class AttemptAdmin(ReadOnlyAdmin):
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


@admin.register(Module)
class ModuleAdmin(ReadOnlyAdmin):
    """Stored modules: kind, size, exports and the tasks using them (the
    bytes themselves are never read for these pages)."""

    list_display = ["short_hash", "kind", "size", "export_names", "task_count", "created_at"]
    list_filter = ["kind"]
    search_fields = ["sha256"]
    ordering = ["-created_at"]
    _columns: tuple[str, ...] = (
        "sha256",
        "kind",
        "size",
        "export_names",
        "created_at",
        "task_count",
        "tasks_using_it",
    )
    fields = _columns
    readonly_fields = _columns
    TASKS_SHOWN = 20

    def get_queryset(self, request: HttpRequest) -> QuerySet[Module]:
        return super().get_queryset(request).defer("wasm").annotate(tasks_n=Count("tasks"))

    @admin.display(description="sha256", ordering="sha256")
    def short_hash(self, module: Module) -> str:
        return module.sha256[:12]

    @admin.display(description="exports")
    def export_names(self, module: Module) -> str:
        names = list(module.exports or [])
        shown = ", ".join(names[:10])
        text = shown + (f", … ({len(names)} in all)" if len(names) > 10 else "") or "-"
        # A name may be hundreds of characters with no space (a mangled
        # symbol): broken anywhere, it cannot push the list past the screen.
        return format_html('<span style="overflow-wrap: anywhere">{}</span>', text)

    @admin.display(description="tasks", ordering="tasks_n")
    def task_count(self, module: Module) -> int:
        return int(getattr(module, "tasks_n", 0))

    @admin.display(description="tasks using it (newest)")
    def tasks_using_it(self, module: Module) -> str:
        ids = selectors.module_tasks(module.pk, limit=self.TASKS_SHOWN)
        if not ids:
            return "-"
        links = format_html_join(
            ", ",
            '<a href="{}">{}</a>',
            ((reverse("admin:tasks_app_task_change", args=[quote(i)]), i) for i in ids),
        )
        more = max(self.task_count(module) - len(ids), 0)
        return format_html("{}{}", links, f" and {more} more" if more else "")


# Schedules: edited, paused, resumed and triggered here (tasks_app/schedule_admin.py).
admin.site.register(Schedule, ScheduleAdmin)
