"""Module bytes on a worker, by content hash. Jobs name their module by hash
only; the first job of a module fetches its bytes from the gateway
(`Host.module`), every later one finds them here (and the executor keeps the
module compiled), so a module's bytes reach a worker once."""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from collections.abc import Awaitable, Callable

from tasks_app.modules import module_hash

log = logging.getLogger("ww.worker")


class ModuleUnavailable(Exception):
    """The gateway could not give us a module's bytes."""


class ModuleFetcher:
    def __init__(self, fetch: Callable[[str], Awaitable[bytes]], *, keep: int = 64) -> None:
        self._fetch = fetch
        self._keep = max(keep, 1)
        self._bytes: OrderedDict[str, bytes] = OrderedDict()
        self._pending: dict[str, asyncio.Future[bytes]] = {}
        self.fetches = 0

    async def get(self, digest: str) -> bytes:
        """The module's bytes; fetched once even when many jobs ask at once."""
        wasm = self._bytes.get(digest)
        if wasm is not None:
            self._bytes.move_to_end(digest)
            return wasm
        pending = self._pending.get(digest)
        if pending is None:
            pending = asyncio.ensure_future(self._load(digest))
            self._pending[digest] = pending
            pending.add_done_callback(lambda _: self._pending.pop(digest, None))
        return await asyncio.shield(pending)

    async def _load(self, digest: str) -> bytes:
        self.fetches += 1
        try:
            wasm = await self._fetch(digest)
        except Exception as exc:  # any failure: the run cannot start
            raise ModuleUnavailable(f"could not fetch module {digest}: {exc}") from exc
        if module_hash(wasm) != digest:
            raise ModuleUnavailable(f"the gateway sent other bytes for module {digest}")
        log.info("module %s fetched (%d bytes)", digest[:12], len(wasm))
        self._bytes[digest] = wasm
        while len(self._bytes) > self._keep:
            self._bytes.popitem(last=False)
        return wasm
