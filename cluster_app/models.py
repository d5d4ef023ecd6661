"""The registry of worker nodes the gateway has seen."""

from __future__ import annotations

from django.db import models


class WorkerNode(models.Model):
    """One worker peer. The row outlives its connection, so history keeps
    pointing at it; `connected` says whether it is in the live pool now."""

    peer_id = models.CharField(max_length=80, unique=True)
    address = models.CharField(max_length=100, blank=True, default="")
    concurrency = models.PositiveIntegerField(default=1)
    in_flight = models.PositiveIntegerField(default=0)
    completed = models.PositiveIntegerField(default=0)
    failed = models.PositiveIntegerField(default=0)
    connected = models.BooleanField(default=False)
    first_seen = models.DateTimeField(auto_now_add=True)
    last_seen = models.DateTimeField()

    class Meta:
        ordering = ["-connected", "peer_id"]

    def __str__(self) -> str:
        return self.peer_id
