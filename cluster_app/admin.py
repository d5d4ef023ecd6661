"""The worker registry in the admin: read-only, since workers register
themselves by joining and the gateway keeps their rows."""

from __future__ import annotations

from django.contrib import admin
from django.http import HttpRequest

from cluster_app.models import Worker


@admin.register(Worker)
class WorkerAdmin(admin.ModelAdmin):
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
    ordering = ["-connected", "-last_seen"]
    fields = [*list_display, "first_seen"]
    readonly_fields = tuple(fields)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False
