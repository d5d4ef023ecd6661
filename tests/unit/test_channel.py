"""The seed's channel semantics: reliable, ordered, synchronous."""

from __future__ import annotations

import asyncio

import pytest

from cluster_app.channel import ChannelClosed, SyncChannel


def run(coro):
    return asyncio.run(coro)


def test_send_returns_only_once_the_value_is_received() -> None:
    async def scenario() -> None:
        channel: SyncChannel[str] = SyncChannel()
        send = asyncio.create_task(channel.send("w1"))
        await asyncio.sleep(0.05)
        assert not send.done()  # synchronous: nobody has received yet
        assert await channel.recv() == "w1"
        await asyncio.wait_for(send, 1)

    run(scenario())


def test_values_are_received_in_send_order_and_none_is_lost() -> None:
    async def scenario() -> None:
        channel: SyncChannel[int] = SyncChannel()
        senders = []
        for k in range(5):
            senders.append(asyncio.create_task(channel.send(k)))
            await asyncio.sleep(0)
        got = [await channel.recv() for _ in range(5)]
        assert got == [0, 1, 2, 3, 4]
        await asyncio.gather(*senders)

    run(scenario())


def test_receivers_are_served_first_come_first_served() -> None:
    async def scenario() -> None:
        channel: SyncChannel[str] = SyncChannel()
        first = asyncio.create_task(channel.recv())
        await asyncio.sleep(0)
        second = asyncio.create_task(channel.recv())
        await asyncio.sleep(0)
        await channel.send("a")
        await channel.send("b")
        assert await first == "a"
        assert await second == "b"

    run(scenario())


def test_cancelled_sender_withdraws_its_value() -> None:
    async def scenario() -> None:
        channel: SyncChannel[str] = SyncChannel()
        send = asyncio.create_task(channel.send("gone"))
        await asyncio.sleep(0)
        send.cancel()
        await asyncio.gather(send, return_exceptions=True)
        later = asyncio.create_task(channel.send("kept"))
        assert await channel.recv() == "kept"
        await later

    run(scenario())


def test_close_fails_waiting_senders_and_receivers() -> None:
    async def scenario() -> None:
        channel: SyncChannel[str] = SyncChannel()
        send = asyncio.create_task(channel.send("x"))
        await asyncio.sleep(0)
        channel.close()
        with pytest.raises(ChannelClosed):
            await send
        with pytest.raises(ChannelClosed):
            await channel.recv()

    run(scenario())
