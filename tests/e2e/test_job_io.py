"""A run's inputs reach its module and its outputs come back, end to end
(real gateway and worker processes in a private network namespace): a
WASI command sees exactly the task's argv, environment and stdin, and
nothing of the worker's environment; output that is not UTF-8 comes back
as bytes, stderr beside it."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import wasmtime

from tests.e2e.cluster import Cluster, running_cluster
from tests.unit import wasi_echo

ECHO = bytes(wasmtime.wat2wasm(wasi_echo.ECHO))
BINARY = bytes(wasmtime.wat2wasm(wasi_echo.BINARY))


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    state_dir: Path = tmp_path_factory.mktemp("job_io")
    # Something of the worker's own environment a module must not see.
    with running_cluster(state_dir, workers=1, WW_WORKER_ONLY_SECRET="leaked") as cluster:
        yield cluster


def _submit(cluster: Cluster, wasm: bytes, **task: Any) -> str:
    body = {"wasm_base64": base64.b64encode(wasm).decode(), "duration": 10, **task}
    response = cluster.request("POST", "/tasks", json=body)
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def _finished_run(cluster: Cluster, task_id: str) -> dict[str, Any]:
    def done() -> dict[str, Any] | None:
        task = cluster.request("GET", f"/tasks/{task_id}").json()
        runs = task.get("runs") or []
        return runs[0] if runs and runs[0]["state"] not in {"pending", "running"} else None

    run: dict[str, Any] = cluster.wait_for(done, 60, f"{task_id}'s run to end")
    return run


def test_a_command_sees_exactly_its_argv_env_and_stdin(cluster: Cluster) -> None:
    args = ["alpha", "two words", "", "ünï"]
    env = {"GREETING": "hello", "EMPTY": "", "PATH": "/only/this"}
    stdin = "first line\nsecond ✓\n"
    task_id = _submit(cluster, ECHO, id="echo-text", args=args, env=env, stdin=stdin)
    run = _finished_run(cluster, task_id)
    assert run["state"] == "succeeded", run
    expected = wasi_echo.echoed([task_id, *args], list(env.items()), stdin.encode())
    assert run["result"] == expected.decode()
    assert (run["result_base64"], run["result_truncated"]) == (None, False)
    assert run["stderr"] == "echo: done\n"
    assert "leaked" not in run["result"]


def test_stdin_bytes_that_are_not_text_come_back_as_bytes(cluster: Cluster) -> None:
    stdin = b"\x00\xff\xfe raw \x80"
    task_id = _submit(
        cluster,
        ECHO,
        id="echo-bytes",
        args=[],
        stdin_base64=base64.b64encode(stdin).decode(),
    )
    run = _finished_run(cluster, task_id)
    expected = wasi_echo.echoed([task_id], [], stdin)
    assert run["state"] == "succeeded", run
    assert run["result"] == ""
    assert base64.b64decode(run["result_base64"]) == expected
    raw = cluster.request("GET", f"/tasks/{task_id}/runs/0/output")
    assert raw.status_code == 200 and raw.content == expected


def test_a_task_without_args_gets_the_seeds_argv(cluster: Cluster) -> None:
    task_id = _submit(cluster, ECHO, id="echo-seed", input=7, difficulty=3)
    run = _finished_run(cluster, task_id)
    assert run["result"] == f"{task_id}\n7\n3\n--\n--\n"


def test_output_that_is_not_utf8_is_stored_as_bytes_with_every_attempt(cluster: Cluster) -> None:
    task_id = _submit(cluster, BINARY, id="binary")
    run = _finished_run(cluster, task_id)
    assert run["state"] == "succeeded", run
    assert (run["result"], base64.b64decode(run["result_base64"])) == (
        "",
        wasi_echo.BINARY_BYTES,
    )
    [attempt] = run["attempts"]
    assert base64.b64decode(attempt["result_base64"]) == wasi_echo.BINARY_BYTES
