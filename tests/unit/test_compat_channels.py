"""tasks_app.compat_channels: consumer dispatch without Channels' database
hop, guarded by Channels' version. (Its channel layer, LocalChannelLayer, is
exercised by tests/unit/test_layers.py.)"""

from __future__ import annotations

import asyncio
from typing import Any

import channels.consumer
import channels.generic.websocket
import pytest
from channels.consumer import AsyncConsumer
from channels.exceptions import StopConsumer

from tasks_app import compat_channels
from tasks_app.compat_channels import JsonWebsocketWithoutDatabase, WithoutDatabase
from tests.unit.compat import import_with_installed, pinned, users_of


def test_written_for_the_pinned_channels() -> None:
    assert compat_channels.WRITTEN_FOR == pinned("channels")


def test_another_channels_is_refused_at_import(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ImportError, match=r"written for channels 4\.3\.2") as err:
        import_with_installed(monkeypatch, compat_channels, "4.4.0")
    assert type(err.value).__name__ == "ChannelsVersionError"
    assert "channels 4.4.0 is installed" in str(err.value)


def test_no_other_module_uses_channels_internals() -> None:
    pattern = r"get_handler_name|aclose_old_connections|InMemoryChannelLayer|_clean_expired"
    assert users_of(pattern) == {"tasks_app/compat_channels.py"}


@pytest.fixture
def database_hops(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Each time Channels closes stale database connections (its hop to the
    database thread), from its consumer dispatch or websocket disconnect."""
    hops: list[str] = []

    async def recorded() -> None:
        hops.append("hop")

    monkeypatch.setattr(channels.consumer, "aclose_old_connections", recorded)
    monkeypatch.setattr(channels.generic.websocket, "aclose_old_connections", recorded)
    return hops


class Greeted:
    greeted: list[dict[str, Any]]

    async def hello_there(self, message: dict[str, Any]) -> None:
        self.greeted.append(message)


class Ours(Greeted, WithoutDatabase):
    greeted: list[dict[str, Any]] = []


class ChannelsOwn(Greeted, AsyncConsumer):
    greeted: list[dict[str, Any]] = []


def test_dispatch_reaches_the_handler_without_the_database_hop(database_hops: list[str]) -> None:
    message = {"type": "hello.there", "n": 1}
    ours, theirs = Ours(), ChannelsOwn()
    ours.greeted, theirs.greeted = [], []
    asyncio.run(ours.dispatch(message))
    assert ours.greeted == [message] and database_hops == []
    # Channels' own dispatch takes the hop the patch spares.
    asyncio.run(theirs.dispatch(message))
    assert theirs.greeted == [message] and database_hops == ["hop"]


def test_dispatch_of_an_unknown_type_is_an_error(database_hops: list[str]) -> None:
    with pytest.raises(ValueError, match=r"no handler for message type nobody\.knows"):
        asyncio.run(Ours().dispatch({"type": "nobody.knows"}))


class Watcher(JsonWebsocketWithoutDatabase):
    closed_with: list[int]

    async def disconnect(self, code: int) -> None:
        self.closed_with.append(code)


def test_websocket_disconnect_stops_the_consumer_without_the_database_hop(
    database_hops: list[str],
) -> None:
    watcher = Watcher()
    watcher.closed_with = []
    with pytest.raises(StopConsumer):
        asyncio.run(watcher.websocket_disconnect({"type": "websocket.disconnect", "code": 1001}))
    assert watcher.closed_with == [1001] and database_hops == []
