"""The scale-out configuration, really started: PostgreSQL (DATABASE_URL)
and the Redis channel layer (REDIS_URL) of this machine, a gateway with two
workers, and a second daphne serving the same REST API and WebSockets
behind the same database and Redis. The seed's task, submitted to the
second process, runs on the gateway's workers and is seen and streamed by
both processes.

The processes run in a private network namespace (multicast discovery);
a relay makes the machine's PostgreSQL and Redis reachable there at the
same addresses. Each run uses a fresh database, dropped afterwards, and
its own Redis database number, flushed before and after. Where PostgreSQL
or Redis is absent the tests skip, except under CI, where they fail."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any, NoReturn
from urllib.parse import urlsplit

import httpx
import psycopg
import pytest
import redis
from prometheus_client.parser import text_string_to_metric_families

from tests.ci import missing_dependency
from tests.e2e.cluster import MANAGE, PROJECT_ROOT, Cluster, seed_form
from tests.netns import new_netns
from tests.postgres import fresh_database
from tests.scaleout.relay import Relay
from tests.ui.live import HASH_WASM, open_stream, read_events, succeeded

REDIS = os.environ.get("WW_TEST_REDIS_URL", "redis://127.0.0.1:6379/5")
SECOND = "127.0.0.1:8081"  # the second, REST-only daphne (same namespace as the gateway)


def _unavailable(what: str, problem: object) -> NoReturn:
    missing_dependency(f"{what} is not reachable ({problem}); the scale-out tests need it")


@pytest.fixture(scope="module")
def database() -> Iterator[str]:
    """A fresh PostgreSQL database; its DATABASE_URL."""
    with fresh_database("ww_test", needed_by="the scale-out tests") as url:
        yield url


@pytest.fixture(scope="module")
def redis_url() -> Iterator[str]:
    client = redis.Redis.from_url(REDIS, socket_connect_timeout=5)
    try:
        client.flushdb()
    except redis.RedisError as exc:
        _unavailable(f"Redis at {REDIS}", exc)
    try:
        yield REDIS
    finally:
        client.flushdb()
        client.close()


class ScaleOut:
    def __init__(self, cluster: Cluster, second: subprocess.Popen[Any], token: str) -> None:
        self.cluster = cluster
        self.second = second
        self.token = token

    def request(self, server: str, method: str, url: str, **kwargs: Any) -> httpx.Response:
        with self.cluster.netns.entered(), httpx.Client(base_url=f"http://{server}") as client:
            return client.request(method, url, timeout=30, **kwargs)


@pytest.fixture(scope="module")
def scaleout(
    database: str, redis_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ScaleOut]:
    ns = new_netns()
    relays: list[Relay] = []
    stack = contextlib.ExitStack()
    try:
        for url in (database, redis_url):
            parts = urlsplit(url)
            relays.append(Relay(ns, parts.hostname or "127.0.0.1", parts.port or 0))
        state = tmp_path_factory.mktemp("scaleout")
        cluster = Cluster(ns, state, DATABASE_URL=database, REDIS_URL=redis_url)
        token = subprocess.run(
            [sys.executable, MANAGE, "issuetoken", "scaleout", "--create-user"],
            env=cluster.env,
            cwd=PROJECT_ROOT,
            check=True,
            capture_output=True,
            text=True,
        ).stdout.strip()
        cluster.start_gateway()
        for _ in range(2):
            cluster.wait_joined(cluster.start_worker("--concurrency", "1"))
        host, port = SECOND.split(":")
        log = stack.enter_context(open(state / "daphne.log", "w"))
        second = ns.spawn(
            [sys.executable, "-m", "daphne", "-b", host, "-p", port, "wwproject.asgi:application"],
            env=cluster.env,
            cwd=PROJECT_ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        scaleout = ScaleOut(cluster, second, token)
        _wait_serving(scaleout, state)
        yield scaleout
    finally:
        ns.close()
        for relay in relays:
            relay.close()
        stack.close()


def _wait_serving(scaleout: ScaleOut, state: Any) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if scaleout.second.poll() is not None:
            break
        try:
            if scaleout.request(SECOND, "GET", "/tasks").status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise AssertionError(f"second daphne not serving:\n{(state / 'daphne.log').read_text()}")


def _samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def test_seed_flow_through_the_second_process(scaleout: ScaleOut, database: str) -> None:
    gateway = "127.0.0.1:8080"
    cluster = scaleout.cluster
    # Watch from both processes: every task on the second, task1 on the gateway.
    with (
        open_stream(cluster, "/ws/tasks/", server=SECOND) as on_second,
        open_stream(cluster, "/ws/tasks/task1/", server=gateway) as on_gateway,
    ):
        response = scaleout.request(
            SECOND,
            "POST",
            "/tasks",
            data=seed_form(),
            files={"wasm": ("hash.wasm", HASH_WASM)},
            headers={"Authorization": f"Token {scaleout.token}"},
        )
        assert response.status_code == 201, response.text
        streamed = {
            "second": read_events(on_second, succeeded("task1", 3), timeout=30),
            "gateway": read_events(on_gateway, succeeded("task1", 3), timeout=30),
        }

    workers = {peer for _, peer in cluster.workers}
    for where, events in streamed.items():
        done = [e for e in events if e["task"] == "task1" and e["state"] == "succeeded"]
        assert sorted(e["index"] for e in done) == [0, 1, 2], where
        assert {e["result"] for e in done} == {"2832"}, where
        assert {e["worker"] for e in done} == workers, where  # spread over both

    for server in (SECOND, gateway):
        listing = scaleout.request(server, "GET", "/tasks").json()
        # Other tests of this module add their own tasks to the same database.
        assert [(t["id"], t["completions"]) for t in listing if t["id"] == "task1"] == [
            ("task1", 3)
        ], server
        task = scaleout.request(server, "GET", "/tasks/task1").json()
        assert [run["result"] for run in task["runs"]] == ["2832"] * 3, server

    # The rows are in PostgreSQL ...
    with psycopg.connect(database) as db:
        count, everyone = db.execute(
            "SELECT count(*) FILTER (WHERE task_id = 'task1'), count(*)"
            " FROM tasks_app_iteration WHERE state = 'succeeded'"
        ).fetchone()
    assert count == 3
    # ... so the second process's /metrics counts them too (with the runs
    # of this module's other tests, when they ran first).
    metrics = _samples(scaleout.request(SECOND, "GET", "/metrics").text)
    assert metrics[("ww_runs", (("state", "succeeded"),))] == everyone


def test_second_process_takes_writes_only_with_a_token(scaleout: ScaleOut) -> None:
    """A daphne started by hand is not known to be on loopback: anonymous
    writes are refused there (the gateway on 127.0.0.1 takes them)."""
    response = scaleout.request(
        SECOND,
        "POST",
        "/tasks",
        data=seed_form(id="anon"),
        files={"wasm": ("hash.wasm", HASH_WASM)},
    )
    assert response.status_code == 401, response.text
    assert scaleout.request(SECOND, "GET", "/tasks/anon").status_code == 404


def test_an_idle_stream_keeps_receiving(scaleout: ScaleOut) -> None:
    """A watcher idle for longer than the Redis layer's 5 s blocking wait
    still gets the next events (redis-py 8's default read timeout used to
    drop it with 'Timeout reading from ...')."""
    with open_stream(scaleout.cluster, "/ws/tasks/idle/", server=SECOND) as stream:
        time.sleep(6.5)
        response = scaleout.request(
            SECOND,
            "POST",
            "/tasks",
            data=seed_form(id="idle", start="0", repeats="1"),
            files={"wasm": ("hash.wasm", HASH_WASM)},
            headers={"Authorization": f"Token {scaleout.token}"},
        )
        assert response.status_code == 201, response.text
        events = read_events(stream, succeeded("idle", 1), timeout=30)
    assert events[-1]["result"] == "2832"
