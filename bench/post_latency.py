"""POST /tasks alone: latency of one submission and submissions per second.

Starts a real gateway (fresh WW_STATE_DIR, SQLite, as bench/ours.py does) and
`--workers` workers (default 1, so the scheduler dispatches the runs as it
would in production; 0 measures the REST path with no dispatch at all), posts
one no-op module once so it is known, then, per repetition:

- latency: `--n` one-run tasks POSTed one after another on one keep-alive
  connection (the module is the same bytes each time): p50, p99, mean in ms;
- throughput: `--tput-n` one-run tasks POSTed by `--concurrency` clients at
  once: POSTs/s, and the gateway's CPU per POST over the posting window.

Prints one JSON document (medians over `--reps` repetitions, and each
repetition); `--json PATH` also writes it; `--profile DIR` records py-spy
profiles of the gateway during the first repetition (only the thread holding
the GIL is sampled, so the shares are of the gateway's Python CPU time, not
of threads waiting for the GIL) and prints the hot spots.

    .venv/bin/python bench/post_latency.py [--workers 0] [--reps 3] [--json out.json]
"""

from __future__ import annotations

import argparse
import concurrent.futures
import contextlib
import json
import os
import signal
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench import modules  # noqa: E402
from bench.measures import pct  # noqa: E402
from bench.ours import OurSystem  # noqa: E402
from bench.procs import Procs  # noqa: E402


def cpu_split(pid: int) -> tuple[float, float]:
    """User and system CPU seconds of a process so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return int(fields[11]) / ticks, int(fields[12]) / ticks


def form(task_id: str) -> dict[str, str]:
    """The seed's form for a one-run task due now."""
    return {
        "id": task_id,
        "description": "bench",
        "complete": "0",
        "duration": "0",
        "start": "0",
        "delay": "0",
        "repeats": "1",
        "input": "1",
        "difficulty": "2",
    }


def post(client: httpx.Client, wasm: bytes, task_id: str) -> None:
    r = client.post(
        "/tasks", data=form(task_id), files={"wasm": ("m.wasm", wasm, "application/wasm")}
    )
    if r.status_code != 201:
        raise RuntimeError(f"POST /tasks {task_id}: {r.status_code} {r.text[:300]}")


def latency(sys_: OurSystem, wasm: bytes, n: int) -> dict[str, Any]:
    times: list[float] = []
    with httpx.Client(base_url=str(sys_.http.base_url), timeout=60) as client:
        post(client, wasm, sys_.new_id("lat-warm"))  # the connection is open
        for _ in range(n):
            task_id = sys_.new_id("lat")
            t0 = time.perf_counter()
            post(client, wasm, task_id)
            times.append((time.perf_counter() - t0) * 1000)
    return {
        "n": n,
        "p50_ms": pct(times, 50),
        "p90_ms": pct(times, 90),
        "p99_ms": pct(times, 99),
        "mean_ms": statistics.fmean(times),
    }


def throughput(sys_: OurSystem, wasm: bytes, n: int, concurrency: int) -> dict[str, Any]:
    assert sys_.gateway is not None
    ids = [sys_.new_id("tput") for _ in range(n)]
    clients = [
        httpx.Client(base_url=str(sys_.http.base_url), timeout=60) for _ in range(concurrency)
    ]
    errors: list[str] = []

    def one(i: int) -> None:
        try:
            post(clients[i % concurrency], wasm, ids[i])
        except Exception as exc:  # noqa: BLE001 - counted and reported
            errors.append(str(exc)[:200])

    try:
        user0, sys0 = cpu_split(sys_.gateway.pid)
        client0 = time.process_time()
        t0 = time.perf_counter()
        with concurrent.futures.ThreadPoolExecutor(concurrency) as pool:
            list(pool.map(one, range(n)))
        seconds = time.perf_counter() - t0
        client_cpu = time.process_time() - client0
        user1, sys1 = cpu_split(sys_.gateway.pid)
        user, system = user1 - user0, sys1 - sys0
    finally:
        for client in clients:
            client.close()
    return {
        "n": n,
        "concurrency": concurrency,
        "posts_per_s": n / seconds,
        "seconds": seconds,
        "gateway_cpu_ms_per_post": (user + system) * 1000 / n,
        "gateway_user_ms_per_post": user * 1000 / n,
        "gateway_sys_ms_per_post": system * 1000 / n,
        "client_cpu_ms_per_post": client_cpu * 1000 / n,
        "errors": len(errors),
        "first_errors": errors[:3],
    }


@contextlib.contextmanager
def gil_profile(procs: Procs, pid: int, path: Path) -> Iterator[Path]:
    """py-spy record (raw collapsed stacks, 500 Hz) of the thread holding the GIL."""
    py_spy = str(Path(sys.executable).with_name("py-spy"))
    argv = [py_spy, "record", "--pid", str(pid), "--rate", "500", "--gil"]
    argv += ["--format", "raw", "--output", str(path)]
    spy = procs.start(f"py-spy-{path.stem}", argv, env=dict(os.environ), cwd=ROOT)
    time.sleep(1.0)  # let py-spy attach
    try:
        yield path
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(spy.pid, signal.SIGINT)
        with contextlib.suppress(Exception):
            spy.popen.wait(20)
        procs.stop(spy)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--n", type=int, default=300, help="sequential POSTs per repetition")
    parser.add_argument("--tput-n", type=int, default=1000, help="concurrent POSTs per rep")
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--json", default="", help="also write the JSON document here")
    parser.add_argument("--profile", default="", help="py-spy profiles of rep 1 into this dir")
    args = parser.parse_args()

    procs = Procs(Path(tempfile.mkdtemp(prefix="ww-post-bench-")))

    def on_signal(signum: int, frame: object) -> None:
        procs.stop_all()
        sys.exit(1)

    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, on_signal)
    wasm = modules.noop_wasm()
    sys_ = OurSystem(procs, label="post", log_level="WARNING")
    reps: list[dict[str, Any]] = []
    profile: dict[str, Any] = {}
    try:
        sys_.start_gateway()
        for _ in range(args.workers):
            sys_.start_worker()
        if args.workers:
            sys_.warm_up(wasm, runs=2)
        else:
            sys_.submit(wasm, task_id=sys_.new_id("known"))
        for rep in range(args.reps):
            if rep == 0 and args.profile:
                from bench import profiling

                out_dir = Path(args.profile)
                out_dir.mkdir(parents=True, exist_ok=True)
                assert sys_.gateway is not None
                pid = sys_.gateway.pid
                with gil_profile(procs, pid, out_dir / "latency-gateway.txt") as path:
                    lat = latency(sys_, wasm, args.n)
                summary = profiling.summarize({"gateway": path}, rate=500)
                profile["latency"] = {"result": lat, "profiles": summary}
                with gil_profile(procs, pid, out_dir / "throughput-gateway.txt") as path:
                    tput = throughput(sys_, wasm, args.tput_n, args.concurrency)
                summary = profiling.summarize({"gateway": path}, rate=500)
                profile["throughput"] = {"result": tput, "profiles": summary}
                print(profiling.render(profile), file=sys.stderr)
            else:
                lat = latency(sys_, wasm, args.n)
                tput = throughput(sys_, wasm, args.tput_n, args.concurrency)
            reps.append({"latency": lat, "throughput": tput})
            print(
                f"rep {rep + 1}: p50 {lat['p50_ms']:.2f} ms, p99 {lat['p99_ms']:.2f} ms, "
                f"{tput['posts_per_s']:.0f} POSTs/s, "
                f"{tput['gateway_cpu_ms_per_post']:.2f} ms gateway CPU/POST "
                f"({tput['gateway_sys_ms_per_post']:.2f} system), "
                f"{tput['client_cpu_ms_per_post']:.2f} ms client CPU/POST",
                file=sys.stderr,
            )
    finally:
        sys_.stop()
        procs.stop_all()

    def med(part: str, key: str) -> float:
        return statistics.median(r[part][key] for r in reps)

    doc = {
        "workers": args.workers,
        "post_p50_ms": med("latency", "p50_ms"),
        "post_p99_ms": med("latency", "p99_ms"),
        "post_mean_ms": med("latency", "mean_ms"),
        "posts_per_s": med("throughput", "posts_per_s"),
        "gateway_cpu_ms_per_post": med("throughput", "gateway_cpu_ms_per_post"),
        "errors": sum(r["throughput"]["errors"] for r in reps),
        "reps": reps,
    }
    text = json.dumps(doc, indent=2)
    print(text)
    if args.json:
        Path(args.json).write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
