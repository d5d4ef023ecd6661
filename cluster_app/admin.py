"""The worker registry in the admin: read-only, since workers register
themselves by joining and the gateway keeps their rows."""

from __future__ import annotations

from django.contrib import admin
from django.http import HttpRequest

from cluster_app.models import Worker

_LISTED: tuple[str, ...] = (
    "peer_id",
    "connected",
    "address",
    "served_queues",
    "label_list",
    "concurrency",
    "in_flight",
    "completed",
    "failed",
    "last_seen",
)


@admin.register(Worker)
class WorkerAdmin(admin.ModelAdmin):
    list_display = _LISTED
    list_filter = ["connected"]
    search_fields = ["peer_id", "address", "labels", "queues"]
    ordering = ["-connected", "-last_seen"]
    fields = [*_LISTED, "first_seen"]
    readonly_fields = [*_LISTED, "first_seen"]

    @admin.display(description="queues")
    def served_queues(self, worker: Worker) -> str:
        return ", ".join(worker.queues or ["default"])

    @admin.display(description="labels")
    def label_list(self, worker: Worker) -> str:
        labels = worker.labels if isinstance(worker.labels, dict) else {}
        return ", ".join(f"{k}={v}" for k, v in sorted(labels.items())) or "-"

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False
