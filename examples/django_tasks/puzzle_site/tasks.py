"""The project's tasks: each is a WebAssembly module the cluster runs."""

from __future__ import annotations

from pathlib import Path

from tasks_app.django_tasks import wasm_task

# The seed's hash puzzle, built by the scheduler's `make wasm`. Uploaded once
# (by its sha256) the first time it is enqueued.
HASH_WASM = Path(__file__).resolve().parents[3] / "hash.wasm"

hash_puzzle = wasm_task(str(HASH_WASM), name="hash-puzzle")
