"""What the REST tests submit: the seed's module and its form."""

from __future__ import annotations

from pathlib import Path

from django.core.files.uploadedfile import SimpleUploadedFile

from tasks_app import services
from tasks_app.models import Iteration
from tests.e2e.cluster import seed_form

HASH_WASM = (Path(__file__).resolve().parents[2] / "hash.wasm").read_bytes()


def form(**fields: object) -> dict[str, object]:
    """The seed's form with `fields` changed, the module attached."""
    return {**seed_form(**fields), "wasm": SimpleUploadedFile("hash.wasm", HASH_WASM)}


def stored_task(
    task_id: str, *, repeats: int = 1, difficulty: int = 3, duration: float = 5
) -> list[Iteration]:
    """A task of the seed's module stored through the service (all runs due
    now); its runs, by index."""
    services.create_task(
        task_id=task_id,
        description="",
        wasm=HASH_WASM,
        duration=duration,
        start=0,
        delay=0,
        repeats=repeats,
        input=0,
        difficulty=difficulty,
    )
    return list(Iteration.objects.filter(task_id=task_id).order_by("index"))
