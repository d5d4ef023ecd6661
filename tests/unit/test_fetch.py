"""A worker fetches a module's bytes from the gateway once, checks them
against the hash, and says clearly when it cannot have them."""

from __future__ import annotations

import asyncio

import pytest

from tasks_app.modules import module_hash
from workers.fetch import ModuleFetcher, ModuleUnavailable

WASM = b"\x00asm\x01\x00\x00\x00"


def test_many_jobs_of_one_module_fetch_it_once() -> None:
    asked: list[str] = []

    async def fetch(digest: str) -> bytes:
        asked.append(digest)
        await asyncio.sleep(0.01)
        return WASM

    async def main() -> list[bytes]:
        fetcher = ModuleFetcher(fetch)
        first = await asyncio.gather(*(fetcher.get(module_hash(WASM)) for _ in range(5)))
        return [*first, await fetcher.get(module_hash(WASM))]

    assert asyncio.run(main()) == [WASM] * 6
    assert asked == [module_hash(WASM)]


def test_bytes_that_do_not_match_the_hash_are_refused() -> None:
    async def fetch(digest: str) -> bytes:
        return WASM + b"\x00"

    with pytest.raises(ModuleUnavailable, match="other bytes"):
        asyncio.run(ModuleFetcher(fetch).get(module_hash(WASM)))


def test_a_failed_fetch_is_tried_again_by_the_next_job() -> None:
    answers: list[Exception | bytes] = [KeyError("no module"), WASM]

    async def fetch(digest: str) -> bytes:
        answer = answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    async def main() -> bytes:
        fetcher = ModuleFetcher(fetch)
        with pytest.raises(ModuleUnavailable, match="could not fetch"):
            await fetcher.get(module_hash(WASM))
        return await fetcher.get(module_hash(WASM))

    assert asyncio.run(main()) == WASM
