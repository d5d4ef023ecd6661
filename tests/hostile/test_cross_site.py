"""A page of another origin cannot write to the loopback gateway.

Headless Chromium (inside the cluster's namespace) opens a page served by
a tiny http.server on 127.0.0.2:9000 (another origin: another host), whose
script does what an attacker's page would: `fetch` POST /tasks with the
seed's multipart form (no-cors: the answer need not be readable for the
harm to be done) and a DELETE. The gateway answers the POST 403 and stores
nothing; the DELETE never gets past the browser's preflight, and sent by
hand with that Origin it is a 403 too. The gateway's own page (/api/docs/)
may still POST, clients without Origin (curl, scripts) still get 201, and
the cluster serves a good task after. Before the rule, the POST was a 201
and the task ran."""

from __future__ import annotations

import http.server
import socketserver
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.cluster import HTTP, PROJECT_ROOT, Cluster, running_cluster, seed_form
from tests.ui.browser import chromium

ATTACKER = ("127.0.0.2", 9000)
ATTACKER_ORIGIN = "http://127.0.0.2:9000"
HASH_WASM = (PROJECT_ROOT / "hash.wasm").read_bytes()

# Submits the seed's form with the module to the gateway: what a hostile
# page runs. Returns what the page can see of the answer.
SUBMIT = """
async ([url, id, wasm, mode]) => {
  const form = new FormData();
  const fields = {id, description: "x", complete: "0", duration: "5", start: "0",
                  delay: "0", repeats: "1", input: "0", difficulty: "3"};
  for (const [k, v] of Object.entries(fields)) form.append(k, v);
  form.append("wasm", new Blob([new Uint8Array(wasm)]), "hash.wasm");
  try {
    const r = await fetch(url, {method: "POST", body: form, mode});
    return {status: r.status, type: r.type};
  } catch (e) { return {error: String(e)}; }
}
"""
DELETE = """
async (url) => {
  try { const r = await fetch(url, {method: "DELETE"}); return {status: r.status}; }
  catch (e) { return {error: String(e)}; }
}
"""


class _Page(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = b"<!doctype html><title>not the gateway</title><p>hello</p>"
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Cluster]:
    with running_cluster(tmp_path, workers=1) as cluster:
        yield cluster


@pytest.fixture
def attacker_site(cluster: Cluster) -> Iterator[str]:
    """http.server on 127.0.0.2:9000 in the cluster's namespace."""
    with cluster.netns.entered():
        server = socketserver.TCPServer(ATTACKER, _Page)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield ATTACKER_ORIGIN
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


@pytest.fixture
def browser(cluster: Cluster) -> Iterator[Any]:
    with chromium(cluster.netns) as browser:
        yield browser


def task_ids(cluster: Cluster) -> set[str]:
    return {task["id"] for task in cluster.request("GET", "/tasks?limit=1000").json()}


def test_a_page_of_another_origin_cannot_submit_or_cancel(
    cluster: Cluster, attacker_site: str, browser: Any
) -> None:
    assert (
        cluster.request(
            "POST", "/tasks", data=seed_form(id="victim", start="600"), files={"wasm": HASH_WASM}
        ).status_code
        == 201
    )  # a task of the user's, made with curl

    page = browser.new_page()
    page.goto(f"{attacker_site}/")
    with page.expect_response(f"http://{HTTP}/tasks") as answer:
        seen = page.evaluate(SUBMIT, [f"http://{HTTP}/tasks", "forged", list(HASH_WASM), "no-cors"])
    assert seen.get("type") == "opaque", seen  # the request was sent
    assert answer.value.status == 403
    # (An opaque answer's body is not kept by the browser; the 403's body
    # is checked below on the DELETE.)
    deleted = page.evaluate(DELETE, f"http://{HTTP}/tasks/victim")
    assert "error" in deleted, deleted  # refused by the browser: no CORS for it
    page.close()

    assert "forged" not in task_ids(cluster)
    # The same DELETE sent with that Origin (a browser without preflight).
    refused = cluster.request("DELETE", "/tasks/victim", headers={"Origin": attacker_site})
    assert refused.status_code == 403 and refused.json()["field"] == "Origin"
    assert cluster.request("GET", "/tasks/victim").json()["state"] != "cancelled"

    # The gateway's own page may write; so may a client without Origin.
    own = browser.new_page()
    own.goto(f"http://{HTTP}/api/docs/")
    seen = own.evaluate(SUBMIT, [f"http://{HTTP}/tasks", "from-docs", list(HASH_WASM), "cors"])
    assert seen.get("status") == 201, seen
    own.close()
    assert cluster.request("DELETE", "/tasks/victim").status_code == 200
    assert {"from-docs", "victim"} <= task_ids(cluster)

    response = cluster.request(
        "POST",
        "/tasks",
        data=seed_form(id="good", start="0", repeats="1"),
        files={"wasm": HASH_WASM},
    )
    assert response.status_code == 201, response.text
    body = cluster.wait_for(
        lambda: (b := cluster.request("GET", "/tasks/good").json())["completions"] == 1 and b,
        60,
        "the good task",
    )
    assert [run["result"] for run in body["runs"]] == ["2832"]
