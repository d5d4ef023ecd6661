"""What the REST tests submit: the seed's module and its form."""

from __future__ import annotations

from pathlib import Path

from django.core.files.uploadedfile import SimpleUploadedFile

from tests.e2e.cluster import seed_form

HASH_WASM = (Path(__file__).resolve().parents[2] / "hash.wasm").read_bytes()


def form(**fields: object) -> dict[str, object]:
    """The seed's form with `fields` changed, the module attached."""
    return {**seed_form(**fields), "wasm": SimpleUploadedFile("hash.wasm", HASH_WASM)}
