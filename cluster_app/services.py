"""Writes to the worker registry."""

from __future__ import annotations

from django.utils import timezone

from tasks_app.models import WorkerNode


def worker_joined(
    *,
    peer_id: str,
    address: str,
    concurrency: int,
    labels: dict[str, str] | None = None,
    queues: list[str] | None = None,
) -> None:
    WorkerNode.objects.update_or_create(
        peer_id=peer_id,
        defaults={
            "address": address,
            "concurrency": concurrency,
            "labels": labels or {},
            "queues": queues or ["default"],
            "connected": True,
            "in_flight": 0,
            "last_seen": timezone.now(),
        },
    )


def worker_left(*, peer_id: str) -> None:
    WorkerNode.objects.filter(peer_id=peer_id).update(
        connected=False, in_flight=0, last_seen=timezone.now()
    )


def worker_load(*, peer_id: str, in_flight: int) -> None:
    WorkerNode.objects.filter(peer_id=peer_id).update(in_flight=in_flight, last_seen=timezone.now())


def forget_connections() -> None:
    """At gateway start nobody is connected yet."""
    WorkerNode.objects.filter(connected=True).update(connected=False, in_flight=0)
