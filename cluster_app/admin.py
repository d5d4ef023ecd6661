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
    search_fields = ["peer_id", "address"]
    ordering = ["-connected", "-last_seen"]
    fields = [*_LISTED, "first_seen"]
    readonly_fields = [*_LISTED, "first_seen"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False
