"""The CLI against a running gateway: `manage.py submit FILE.wasm ... --watch`
posts the task, shows a progress bar until every run has ended and prints
the results; `manage.py tasks` lists them. Then the gateway's /metrics holds
what the runs did. Real processes in a private network namespace."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.e2e.cluster import HTTP, MANAGE, PROJECT_ROOT, Cluster, running_cluster, seed_form


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    with running_cluster(tmp_path_factory.mktemp("cli"), workers=1, concurrency=2) as cluster:
        yield cluster


def cli(
    cluster: Cluster, *args: str, timeout: float = 60, columns: int = 160
) -> subprocess.CompletedProcess[str]:
    """Run a manage.py command inside the namespace (stopped by PID on timeout)."""
    proc = cluster.netns.spawn(
        [sys.executable, MANAGE, *args, "--url", f"http://{HTTP}"],
        env={**cluster.env, "COLUMNS": str(columns)},
        cwd=PROJECT_ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        out, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, _ = proc.communicate()
        raise AssertionError(f"{args[0]} did not finish in {timeout} s:\n{out}") from None
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, "")


@pytest.fixture(scope="module")
def watched(cluster: Cluster) -> subprocess.CompletedProcess[str]:
    """Task cli1 (three runs), submitted and watched to its end by the CLI."""
    return cli(
        cluster,
        "submit",
        str(PROJECT_ROOT / "hash.wasm"),
        "--id",
        "cli1",
        "--input",
        "0",
        "--difficulty",
        "3",
        "--start",
        "0.5",
        "--delay",
        "0.5",
        "--repeats",
        "3",
        "--duration",
        "5",
        "--watch",
    )


def test_submit_watch_shows_progress_until_done_then_the_results(
    cluster: Cluster, watched: subprocess.CompletedProcess[str]
) -> None:
    done = watched
    out = done.stdout
    print(out)
    assert done.returncode == 0, out
    assert "submitted cli1: 3 runs" in out
    assert "3/3" in out and "100%" in out  # the progress bar, at its end
    assert out.count("2832") == 3  # each run's result in the table
    assert "cli1: succeeded, 3 of 3 runs succeeded" in out
    task = cluster.request("GET", "/tasks/cli1").json()
    assert task["completions"] == 3

    listing = cli(cluster, "tasks")
    assert listing.returncode == 0, listing.stdout
    (line,) = [s for s in listing.stdout.splitlines() if s.split()[:1] == ["cli1"]]
    assert "succeeded" in line and "3/3" in line


def test_submit_reports_the_gateways_refusal(
    cluster: Cluster, watched: subprocess.CompletedProcess[str]
) -> None:
    duplicate = cli(cluster, "submit", str(PROJECT_ROOT / "hash.wasm"), "--id", "cli1")
    assert duplicate.returncode != 0
    assert "409" in duplicate.stdout and "id:" in duplicate.stdout


def test_metrics_after_the_runs(
    cluster: Cluster, watched: subprocess.CompletedProcess[str]
) -> None:
    """What the gateway recorded while running cli1's three runs."""
    response = cluster.request("GET", "/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(response.text)
        for s in family.samples
    }
    assert samples[("ww_runs", (("state", "succeeded"),))] == 3
    assert samples[("ww_runs", (("state", "pending"),))] == 0
    assert samples[("ww_dispatch_lateness_seconds_count", ())] == 3
    assert samples[("ww_run_duration_seconds_count", (("state", "succeeded"),))] == 3
    assert samples[("ww_run_duration_seconds_sum", (("state", "succeeded"),))] > 0
    assert samples[("ww_workers_connected", ())] == 1
    assert samples[("ww_queue_depth", ())] == 0


def test_tasks_id_shows_the_first_page_of_runs_and_all_with_all(cluster: Cluster) -> None:
    """A task of 1,500 runs (due in an hour): `tasks ID` shows runs 0-99 in
    80 columns and says how many more; `--all` pages through all 1,500."""
    form = seed_form(id="paged", start="3600", delay="0", repeats="1500")
    wasm = (PROJECT_ROOT / "hash.wasm").read_bytes()
    response = cluster.request("POST", "/tasks", data=form, files={"wasm": ("hash.wasm", wasm)})
    assert response.status_code == 201, response.text
    try:
        first = cli(cluster, "tasks", "paged", columns=80)
        assert first.returncode == 0, first.stdout
        lines = first.stdout.splitlines()
        assert all(len(line) <= 80 for line in lines), max(lines, key=len)
        shown = _run_lines(lines)
        assert shown == list(range(100))
        assert "runs 0-99 of 1500 shown; 1400 more (--all to show every run)" in first.stdout
        assert "paged: scheduled, pending 1500" in first.stdout

        every = cli(cluster, "tasks", "paged", "--all", columns=80)
        assert every.returncode == 0, every.stdout
        assert _run_lines(every.stdout.splitlines()) == list(range(1500))
        assert "more (--all" not in every.stdout
    finally:
        # Its 1,500 pending runs would be in test_metrics_after_the_runs's gauges.
        assert cluster.request("DELETE", "/tasks/paged").status_code == 200


def _run_lines(lines: list[str]) -> list[int]:
    """The run indexes of the table lines (a line starting with a number
    and a state)."""
    out = []
    for line in lines:
        words = line.split()
        if len(words) >= 2 and words[0].isdigit() and words[1] == "pending":
            out.append(int(words[0]))
    return out
