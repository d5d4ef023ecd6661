"""cluster_app.compat_capnp: pycapnp's private stream factory, guarded by
pycapnp's version; an RPC call travels over streams it made."""

from __future__ import annotations

import asyncio
from typing import Any

import capnp
import pytest

import schema
from cluster_app import compat_capnp
from tests.unit.compat import import_with_installed, pinned, users_of


def test_written_for_the_pinned_pycapnp() -> None:
    assert compat_capnp.WRITTEN_FOR == pinned("pycapnp")


def test_another_pycapnp_is_refused_at_import(monkeypatch: pytest.MonkeyPatch) -> None:
    # (The fresh copy's error is its own class: compare by name.)
    with pytest.raises(ImportError, match=r"written for pycapnp 2\.2\.4") as err:
        import_with_installed(monkeypatch, compat_capnp, "2.3.0")
    assert type(err.value).__name__ == "CapnpVersionError"
    assert "pycapnp 2.3.0 is installed" in str(err.value)


def test_no_other_module_uses_pycapnps_private_stream() -> None:
    assert users_of(r"AsyncIoStream\._") == {"cluster_app/compat_capnp.py"}


class Pinged(schema.worker.Worker.Server):  # type: ignore[misc]  # pycapnp is untyped
    def __init__(self) -> None:
        self.pings = 0

    async def ping(self, _context: Any, **kw: Any) -> None:
        self.pings += 1


def test_a_call_travels_over_streams_the_factory_made() -> None:
    async def main() -> int:
        async with capnp.kj_loop():
            loop = asyncio.get_running_loop()
            served: asyncio.Future[Any] = loop.create_future()
            dialled: asyncio.Future[Any] = loop.create_future()
            listener = await loop.create_server(
                lambda: compat_capnp.stream_protocol(served.set_result), "127.0.0.1", 0
            )
            port = listener.sockets[0].getsockname()[1]
            transport, _ = await loop.create_connection(
                lambda: compat_capnp.stream_protocol(dialled.set_result), "127.0.0.1", port
            )
            impl = Pinged()
            server = capnp.TwoPartyServer(await served, bootstrap=impl)
            client = capnp.TwoPartyClient(await dialled)
            worker = client.bootstrap().cast_as(schema.worker.Worker)
            await worker.ping()
            await worker.ping()
            del worker
            client.close()
            server.close()
            transport.close()
            listener.close()
            return impl.pings

    assert asyncio.run(main()) == 2
