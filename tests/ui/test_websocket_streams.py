"""The live run event streams, read by a real WebSocket client from a
running gateway (daphne + Channels, in-memory layer): /ws/tasks/ carries
every run state change, /ws/tasks/<id>/ one task's."""

from __future__ import annotations

from datetime import datetime

import pytest
from websockets.exceptions import InvalidStatus

from tests.e2e.cluster import Cluster
from tests.ui.live import drain, open_stream, read_events, submit, succeeded


def test_all_tasks_stream_carries_every_run_state_change(cluster: Cluster) -> None:
    with open_stream(cluster, "/ws/tasks/") as stream:
        submit(cluster, "ws-all", start="0", delay="0.3", repeats="2")
        events = read_events(stream, succeeded("ws-all", 2), timeout=30)

    mine = [e for e in events if e["task"] == "ws-all"]
    workers = {peer for _, peer in cluster.workers}
    for index in (0, 1):
        states = [e["state"] for e in mine if e["index"] == index]
        assert states == ["running", "succeeded"], mine
        final = next(e for e in mine if e["index"] == index and e["state"] == "succeeded")
        assert final["result"] == "2832"
        assert final["worker"] in workers
        assert final["attempt"] == 1
        assert final["type"] == "run.changed"
        datetime.fromisoformat(final["at"])
    assert max(e["completions"] for e in mine) == 2


def test_one_task_stream_carries_only_that_task(cluster: Cluster) -> None:
    with open_stream(cluster, "/ws/tasks/ws-one/") as stream:
        submit(cluster, "ws-other", start="0", repeats="1")
        submit(cluster, "ws-one", start="0.2", repeats="1")
        events = read_events(stream, succeeded("ws-one", 1), timeout=30)
        cluster.wait_for(
            lambda: cluster.request("GET", "/tasks/ws-other").json()["state"] == "succeeded",
            30,
            "ws-other to finish",
        )
        events += drain(stream, 0.5)
    assert {e["task"] for e in events} == {"ws-one"}
    assert [e["state"] for e in events] == ["running", "succeeded"]


def test_a_page_from_another_site_cannot_open_the_stream(cluster: Cluster) -> None:
    with pytest.raises(InvalidStatus) as refused:
        open_stream(cluster, "/ws/tasks/", origin="http://evil.example")
    assert refused.value.response.status_code == 403
    # The gateway's own pages may.
    with open_stream(cluster, "/ws/tasks/", origin="http://127.0.0.1:8080"):
        pass
