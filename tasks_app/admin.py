"""The admin a person can run the system from: tasks with progress, their
runs and attempts inline, filters by state."""

from __future__ import annotations

from django.contrib import admin
from django.db.models import F, QuerySet
from django.http import HttpRequest

from tasks_app import selectors
from tasks_app.models import Attempt, Iteration, Module, Task
from tasks_app.progress import task_state


class IterationInline(admin.TabularInline):
    model = Iteration
    extra = 0
    can_delete = False
    show_change_link = True
    fields = ["index", "due_at", "state", "result", "error", "finished_at"]
    readonly_fields = fields

    def has_add_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


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
    ]
    fields = ["description", *readonly_fields]
    inlines = [IterationInline]

    def get_queryset(self, request: HttpRequest) -> QuerySet[Task]:
        return selectors.task_list()

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
