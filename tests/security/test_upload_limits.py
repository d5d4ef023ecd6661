"""Upload limits against a real `rungateway` (no workers, no discovery) in a
private network namespace: a body far over the limit gets a 413, whether it
declares its length or streams it chunked, without the gateway holding it in
memory, and the gateway keeps serving."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.cluster import PROJECT_ROOT, Cluster, running_cluster, seed_form

MODULE_LIMIT = 64 * 1024
BODY_LIMIT = MODULE_LIMIT + 1024 * 1024  # wwproject.asgi: the module plus 1 MiB of form
HUGE = 24 * 1024 * 1024  # far over BODY_LIMIT
HASH_WASM = (PROJECT_ROOT / "hash.wasm").read_bytes()


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    with running_cluster(
        tmp_path_factory.mktemp("upload-limits"),
        gateway_args=("--no-discovery",),
        WW_MODULE_MAX_BYTES=str(MODULE_LIMIT),
    ) as cluster:
        yield cluster


def peak_rss(pid: int) -> int:
    """The process's peak resident set size (VmHWM), in bytes."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmHWM in /proc status")


def assert_healthy(gateway: Cluster, task_id: str) -> None:
    assert gateway.gateway is not None and gateway.gateway.popen.poll() is None
    assert gateway.request("GET", "/tasks").status_code == 200
    ok = gateway.request(
        "POST", "/tasks", data=seed_form(id=task_id), files={"wasm": ("h.wasm", HASH_WASM)}
    )
    assert ok.status_code == 201, ok.text


def assert_413(response, limit: int) -> None:
    assert response.status_code == 413, response.text[:500]
    body = response.json()
    assert body["field"] == "wasm"
    assert str(limit) in body["problem"]


# First in this module on purpose: it reads the gateway's peak memory, which
# any earlier big upload would already have raised.
def test_oversized_multipart_upload_is_never_held_in_memory(gateway: Cluster) -> None:
    assert gateway.gateway is not None
    before = peak_rss(gateway.gateway.pid)
    response = gateway.request(
        "POST", "/tasks", data=seed_form(id="huge"), files={"wasm": ("h.wasm", bytes(HUGE))}
    )
    assert response.status_code == 413
    grown = peak_rss(gateway.gateway.pid) - before
    assert grown < HUGE // 4, f"gateway peak memory grew by {grown} bytes for a {HUGE}-byte body"


def test_declared_oversized_body_gets_413_and_the_gateway_stays_healthy(gateway: Cluster) -> None:
    response = gateway.request(
        "POST", "/tasks", data=seed_form(id="huge2"), files={"wasm": ("h.wasm", bytes(HUGE))}
    )
    assert_413(response, BODY_LIMIT)
    assert gateway.request("GET", "/tasks/huge2").status_code == 404
    assert_healthy(gateway, "after-huge")


def test_chunked_body_without_content_length_gets_413(gateway: Cluster) -> None:
    boundary = "ww-test-boundary"
    chunk = bytes(64 * 1024)

    def body() -> Iterator[bytes]:
        # A multipart form whose file part never seems to end; no Content-Length.
        yield (
            f'--{boundary}\r\nContent-Disposition: form-data; name="id"\r\n\r\nchunked\r\n'
            f'--{boundary}\r\nContent-Disposition: form-data; name="wasm"; '
            'filename="h.wasm"\r\nContent-Type: application/wasm\r\n\r\n'
        ).encode()
        for _ in range(HUGE // len(chunk)):
            yield chunk
        yield f"\r\n--{boundary}--\r\n".encode()

    response = gateway.request(
        "POST",
        "/tasks",
        content=body(),
        headers={"Content-Type": f"multipart/form-data; boundary={boundary}"},
    )
    assert response.request.headers.get("Transfer-Encoding") == "chunked"
    assert "Content-Length" not in response.request.headers
    assert_413(response, BODY_LIMIT)
    assert gateway.request("GET", "/tasks/chunked").status_code == 404
    assert_healthy(gateway, "after-chunked")


def test_module_over_its_own_limit_gets_413_from_the_api(gateway: Cluster) -> None:
    # Under the body limit, over WW_MODULE_MAX_BYTES: the view refuses it.
    response = gateway.request(
        "POST",
        "/tasks",
        data=seed_form(id="big-module"),
        files={"wasm": ("h.wasm", HASH_WASM + bytes(MODULE_LIMIT))},
    )
    assert_413(response, MODULE_LIMIT)
    assert gateway.request("GET", "/tasks/big-module").status_code == 404


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("repeats", "-1"),
        ("repeats", "100000000000"),
        ("delay", "-0.5"),
        ("delay", "1e300"),
        ("start", "-3"),
        ("start", "nan"),
        ("duration", "-1"),
        ("duration", "inf"),
        ("input", str(2**64)),
    ],
)
def test_absurd_field_values_get_400_naming_the_field(
    gateway: Cluster, field: str, value: str
) -> None:
    task_id = f"absurd-{field}"
    response = gateway.request(
        "POST",
        "/tasks",
        data=seed_form(id=task_id, **{field: value}),
        files={"wasm": ("h.wasm", HASH_WASM)},
    )
    assert response.status_code == 400, response.text
    assert response.json()["field"] == field
    assert gateway.request("GET", f"/tasks/{task_id}").status_code == 404
