"""The embedded channel layer: a group message reaches every member, each
its own copy, in order, in the sender's loop turn; a member too far behind
leaves its groups and is told, without stopping the others."""

from __future__ import annotations

import asyncio

from tasks_app.compat_channels import OVERFLOWED, LocalChannelLayer


def test_a_group_message_is_on_every_members_queue_when_group_send_returns() -> None:
    async def main() -> None:
        layer = LocalChannelLayer(capacity=10)
        a, b = await layer.new_channel(), await layer.new_channel()
        await layer.group_add("watchers", a)
        await layer.group_add("watchers", b)
        await layer.group_add("others", await layer.new_channel())
        message = {"type": "runs.changed", "events": [{"index": 0}]}
        turns: list[str] = []
        asyncio.get_running_loop().call_soon(turns.append, "a loop turn passed")
        await layer.group_send("watchers", message)
        # Queued in this very turn (Channels' own layer lets the loop turn).
        assert turns == []
        assert layer.channels[a].qsize() == 1 and layer.channels[b].qsize() == 1
        got_a, got_b = await layer.receive(a), await layer.receive(b)
        assert got_a == message and got_b == message
        got_a["events"].append("changed by one watcher")
        assert got_b["events"] == [{"index": 0}] and message["events"] == [{"index": 0}]

    asyncio.run(main())


def test_messages_arrive_in_the_order_sent() -> None:
    async def main() -> None:
        layer = LocalChannelLayer(capacity=10)
        channel = await layer.new_channel()
        await layer.group_add("watchers", channel)
        for n in range(5):
            await layer.group_send("watchers", {"type": "x", "n": n})
        assert [(await layer.receive(channel))["n"] for _ in range(5)] == [0, 1, 2, 3, 4]

    asyncio.run(main())


def test_a_member_too_far_behind_leaves_its_groups_and_is_told_the_others_get_the_message() -> None:
    async def main() -> None:
        layer = LocalChannelLayer(capacity=100, member_capacity=2)
        slow, free = await layer.new_channel(), await layer.new_channel()
        for group in ("watchers", "one-task"):
            await layer.group_add(group, slow)
        await layer.group_add("watchers", free)
        for n in range(3):
            await layer.group_send("watchers", {"type": "x", "n": n})
            assert (await layer.receive(free))["n"] == n
        # Two waited unread on `slow`: the third was not queued, it was told.
        assert [await layer.receive(slow) for _ in range(3)] == [
            {"type": "x", "n": 0},
            {"type": "x", "n": 1},
            OVERFLOWED,
        ]
        assert slow not in layer.groups.get("watchers", {})
        assert slow not in layer.groups.get("one-task", {})  # nothing more piles up
        await layer.group_send("one-task", {"type": "x", "n": 3})
        assert layer.channels.get(slow) is None

    asyncio.run(main())


def test_a_member_at_the_channels_own_capacity_is_told_too() -> None:
    async def main() -> None:
        layer = LocalChannelLayer(capacity=1)
        full, free = await layer.new_channel(), await layer.new_channel()
        await layer.group_add("watchers", full)
        await layer.send(full, {"type": "x", "n": "first"})
        await layer.group_add("watchers", free)
        await layer.group_send("watchers", {"type": "x", "n": "second"})
        assert await layer.receive(full) == OVERFLOWED  # room made for the notice
        assert (await layer.receive(free))["n"] == "second"

    asyncio.run(main())


def test_a_group_nobody_joined_takes_the_message_and_drops_it() -> None:
    async def main() -> None:
        layer = LocalChannelLayer()
        await layer.group_send("nobody", {"type": "x"})
        assert layer.channels == {}

    asyncio.run(main())


def test_a_member_leaving_its_last_group_leaves_nothing_queued() -> None:
    async def main() -> None:
        layer = LocalChannelLayer(capacity=10)
        watcher = await layer.new_channel()
        await layer.group_add("a", watcher)
        await layer.group_add("b", watcher)
        await layer.group_send("a", {"type": "x"})
        await layer.group_discard("a", watcher)
        assert layer.channels[watcher].qsize() == 1  # still watching b
        await layer.group_discard("b", watcher)
        assert watcher not in layer.channels

    asyncio.run(main())
