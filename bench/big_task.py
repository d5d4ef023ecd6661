"""A task of 100,000 runs against the REST API (issue 14.2): how fast
`GET /tasks/<id>` and `DELETE /tasks/<id>` answer for it, and whether
`GET /tasks` stays as fast while they run.

Starts a real gateway (fresh WW_STATE_DIR, SQLite, no workers: the runs are
due in an hour, nothing is dispatched), submits `--small` one-run tasks and
`--big` tasks of `--runs` runs each by `POST /tasks`, then measures, each
on its own keep-alive connection:

1. `GET /tasks` alone (`--n` requests): the baseline;
2. `GET /tasks/<big id>` (first page of runs, the default 100) alone, and a
   page deep inside the task (`?runs_offset=runs/2`);
3. `GET /tasks` while `--load` clients request `GET /tasks/<big id>` back to
   back (the issue's "two such requests in flight");
4. `DELETE /tasks/<big id>` of each big task in turn (each cancels its
   100,000 pending runs), with `GET /tasks` measured meanwhile and while
   the gateway's settler turns the rows the cancels left `pending`
   cancelled (`settled_s`: from the last DELETE's answer until `ww_runs`
   shows none of them pending); then DELETE again (already cancelled:
   what a repeat costs).

Prints p50/p90/max in ms and the response sizes as one JSON document
(`--json PATH` also writes it). Not a test: nothing here asserts a time.

    .venv/bin/python bench/big_task.py [--runs 100000] [--big 5] [--load 2]
"""

from __future__ import annotations

import argparse
import json
import re
import signal
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench import modules  # noqa: E402
from bench.measures import pct  # noqa: E402
from bench.ours import OurSystem  # noqa: E402
from bench.procs import Procs  # noqa: E402


def timed(client: httpx.Client, method: str, path: str) -> tuple[float, int]:
    """(milliseconds, response bytes) of one request; raises on an error status."""
    t0 = time.perf_counter()
    response = client.request(method, path)
    ms = (time.perf_counter() - t0) * 1000
    response.raise_for_status()
    return ms, len(response.content)


def stats(times: list[float]) -> dict[str, Any]:
    return {
        "n": len(times),
        "p50_ms": pct(times, 50),
        "p90_ms": pct(times, 90),
        "max_ms": max(times) if times else None,
    }


def repeat(client: httpx.Client, method: str, path: str, n: int) -> dict[str, Any]:
    times, size = [], 0
    for _ in range(n):
        ms, size = timed(client, method, path)
        times.append(ms)
    return {**stats(times), "bytes": size}


class Background:
    """`clients` threads requesting `path` back to back until stopped."""

    def __init__(self, base_url: str, method: str, paths: list[str], clients: int) -> None:
        self.base_url, self.method, self.paths = base_url, method, paths
        self.stopping = threading.Event()
        self.times: list[float] = []
        self.errors: list[str] = []
        self.threads = [threading.Thread(target=self._loop, args=(k,)) for k in range(clients)]

    def _loop(self, k: int) -> None:
        with httpx.Client(base_url=self.base_url, timeout=120) as client:
            i = k
            while not self.stopping.is_set():
                try:
                    ms, _ = timed(client, self.method, self.paths[i % len(self.paths)])
                    self.times.append(ms)
                except httpx.HTTPError as exc:
                    self.errors.append(str(exc)[:200])
                i += 1

    def __enter__(self) -> Background:
        for thread in self.threads:
            thread.start()
        time.sleep(0.2)  # let them be in flight
        return self

    def __exit__(self, *exc: object) -> None:
        self.stopping.set()
        for thread in self.threads:
            thread.join()


def settled_after(client: httpx.Client, *, pending: int) -> float:
    """Seconds until the database holds no more than `pending` runs in
    state pending (`ww_runs`, counted at scrape time): how long the
    gateway's settler takes to turn the cancelled runs' rows cancelled
    (every read shows them cancelled from the DELETE on)."""
    t0 = time.perf_counter()
    while True:
        text = client.get("/metrics").text
        found = re.search(r'^ww_runs\{state="pending"\} (\S+)$', text, re.MULTILINE)
        if found is not None and float(found.group(1)) <= pending:
            return time.perf_counter() - t0
        if time.perf_counter() - t0 > 300:
            raise TimeoutError("the cancelled runs were not settled in 300 s")
        time.sleep(0.05)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=100_000, help="runs per big task")
    parser.add_argument("--big", type=int, default=5, help="big tasks (one DELETE each)")
    parser.add_argument("--small", type=int, default=20, help="one-run tasks beside them")
    parser.add_argument("--n", type=int, default=50, help="requests per measure")
    parser.add_argument("--load", type=int, default=2, help="clients loading GET /tasks/<big>")
    parser.add_argument("--json", default="", help="also write the JSON document here")
    args = parser.parse_args()

    procs = Procs(Path(tempfile.mkdtemp(prefix="ww-big-task-bench-")))

    def on_signal(signum: int, frame: object) -> None:
        procs.stop_all()
        sys.exit(1)

    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, on_signal)
    wasm = modules.noop_wasm()
    sys_ = OurSystem(procs, label="big", log_level="WARNING")
    out: dict[str, Any] = {"runs_per_big_task": args.runs, "load_clients": args.load}
    try:
        sys_.start_gateway()
        for _ in range(args.small):
            sys_.submit(wasm, task_id=sys_.new_id("small"), start=3600)
        big = [sys_.new_id("big") for _ in range(args.big)]
        t0 = time.perf_counter()
        for task_id in big:
            sys_.submit(wasm, task_id=task_id, repeats=args.runs, start=3600, delay=0.001)
        out["submit_big_s_each"] = (time.perf_counter() - t0) / args.big
        base_url = str(sys_.http.base_url)
        listing = httpx.Client(base_url=base_url, timeout=120)
        detail = httpx.Client(base_url=base_url, timeout=120)
        try:
            repeat(listing, "GET", "/tasks", 5)  # warm: connections, caches
            repeat(detail, "GET", f"/tasks/{big[0]}", 5)
            out["list_alone"] = repeat(listing, "GET", "/tasks", args.n)
            out["detail_alone"] = repeat(detail, "GET", f"/tasks/{big[0]}", args.n)
            deep = f"/tasks/{big[0]}?runs_offset={args.runs // 2}"
            out["detail_deep_page_alone"] = repeat(detail, "GET", deep, args.n)

            paths = [f"/tasks/{task_id}" for task_id in big]
            with Background(base_url, "GET", paths, args.load) as load:
                out["list_during_detail_load"] = repeat(listing, "GET", "/tasks", args.n)
            out["detail_under_load"] = {**stats(load.times), "errors": len(load.errors)}

            with Background(base_url, "GET", ["/tasks"], 1) as lister:
                first = [timed(detail, "DELETE", path) for path in paths]
                out["settled_s"] = settled_after(detail, pending=args.small)
            out["delete_first"] = {**stats([ms for ms, _ in first]), "bytes": first[0][1]}
            out["list_during_deletes"] = {**stats(lister.times), "errors": len(lister.errors)}
            out["delete_again"] = repeat(detail, "DELETE", paths[0], args.n)
            out["detail_after_cancel"] = repeat(detail, "GET", paths[0], args.n)
            out["list_after"] = repeat(listing, "GET", "/tasks", args.n)
        finally:
            listing.close()
            detail.close()
    finally:
        sys_.stop()
        procs.stop_all()
    document = json.dumps(out, indent=2)
    print(document)
    if args.json:
        Path(args.json).write_text(document + "\n")
    for name in (
        "list_alone",
        "detail_alone",
        "detail_deep_page_alone",
        "list_during_detail_load",
        "detail_under_load",
        "delete_first",
        "list_during_deletes",
        "delete_again",
        "detail_after_cancel",
        "list_after",
    ):
        m = out[name]
        print(f"{name:26} p50 {m['p50_ms']:8.1f} ms  p90 {m['p90_ms']:8.1f}  (n={m['n']})")
    print(f"{'settled_s':26} {out['settled_s']:8.2f} s after the last DELETE")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
