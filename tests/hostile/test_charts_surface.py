"""GET /api/charts (the status page's live charts) against a real gateway
in a private network namespace, as a careless or hostile reader uses it: a
burst of requests from many connections, query strings asking for more
points or another window, other methods. Its answer stays the fixed
15-minute series (nothing a client sends makes it longer), every request is
answered, and the gateway's memory stays bounded."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import httpx

from tests.e2e.cluster import HTTP, running_cluster
from tests.hostile.memory import rss_mb

CLIENTS = 8
REQUESTS_EACH = 250
HOSTILE_QUERIES = [
    "?points=1000000000",
    "?since=-1&until=99999999999",
    "?step=0.000001",
    "?" + "x=" + "A" * 4000,
    "?points[]=1&points[]=2",
    "?%00=%ff",
]


def test_a_burst_of_reads_and_hostile_queries_get_the_same_bounded_series(tmp_path: Path) -> None:
    with running_cluster(tmp_path, workers=1) as cluster:
        assert cluster.gateway is not None
        plain = cluster.request("GET", "/api/charts")
        assert plain.status_code == 200, plain.text
        shape = plain.json()
        assert set(shape) >= {"points", "step", "at", "ended", "queue_depth", "workers"}
        points = shape["points"]
        assert points <= 180

        # Nothing in a query string changes what is kept or sent.
        for query in HOSTILE_QUERIES:
            response = cluster.request("GET", "/api/charts" + query)
            assert response.status_code == 200, (query, response.status_code)
            body = response.json()
            assert body["points"] == points and len(body["at"]) <= points, query
            assert set(body) == set(shape), query

        # Writes are refused with a clear status (a cross-site-looking write
        # stops at the origin check, 403; else 405), never served.
        for method in ("POST", "PUT", "DELETE", "PATCH"):
            refused = cluster.request(method, "/api/charts")
            assert refused.status_code in (403, 405), method
            assert b'"queue_depth"' not in refused.content, method

        before = rss_mb(cluster.gateway.pid)
        answered: list[int] = []
        sizes: list[int] = []
        lock = threading.Lock()

        def reader() -> None:
            with cluster.netns.entered(), httpx.Client(base_url=f"http://{HTTP}", timeout=30) as c:
                for _ in range(REQUESTS_EACH):
                    response = c.get("/api/charts")
                    with lock:
                        answered.append(response.status_code)
                        sizes.append(len(response.content))

        threads = [threading.Thread(target=reader) for _ in range(CLIENTS)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=120)
        assert answered.count(200) == CLIENTS * REQUESTS_EACH
        # 180 samples of a few numbers each: a bounded answer whatever the load.
        assert max(sizes) < 200_000
        assert rss_mb(cluster.gateway.pid) < before + 50
        # And the gateway still serves everything else.
        assert cluster.request("GET", "/tasks").status_code == 200
        assert json.loads(cluster.request("GET", "/api/status").text)
