from __future__ import annotations

from django.contrib import admin
from django.http import HttpRequest

from cluster_app.models import WorkerNode


@admin.register(WorkerNode)
class WorkerNodeAdmin(admin.ModelAdmin):
    list_display = [
        "peer_id",
        "connected",
        "address",
        "concurrency",
        "in_flight",
        "completed",
        "failed",
        "last_seen",
    ]
    list_filter = ["connected"]
    search_fields = ["peer_id", "address"]
    readonly_fields = [*list_display, "first_seen"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # workers register themselves by joining
