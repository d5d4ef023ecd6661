"""One command: ww-scheduler vs Celery 5 + Redis and Dramatiq 2 + Redis
baselines on the same wasm modules, on this machine, in one invocation
(issues 5 and 17.8).

    .venv/bin/python bench/run.py [--quick] [--only NAME,...] [--out bench/RESULTS.md]
                                  [--json PATH] [--profile DIR]

Measures (names for --only): throughput, roundtrip, punctuality, loss,
scaling, wasm, scale, one_run_tasks, batch, roundtrip_wait,
big_task_running; and, only when named, big_task (bench/big_task.py, a
100,000-run task against our gateway alone, a few minutes more) and issue
18's beat_lateness, beat_many, beat_restart (our schedules against Celery
beat with django-celery-beat's DatabaseScheduler, ~8 minutes). --profile
DIR instead records py-spy profiles of our gateway and a worker during the
throughput and round-trip loads and prints the hot spots.

The code: bench/shapes/ (one module per shape of load: how ours and
Celery's figures are taken), bench/ours.py and bench/celery_side.py (the two
systems as processes), bench/clients.py (our REST and websocket clients),
bench/measures.py (statistics), bench/report.py (the table's declared
measures and targets); this file runs the phases and writes the document.

Our system: one gateway (`rungateway`, embedded default: SQLite + in-memory
channel layer, default log level) and two `runworker --concurrency 1`
processes (2 slots), static bootstrap on 127.0.0.1, `--no-discovery` (no
multicast), a fresh WW_STATE_DIR per start. Celery: bench/celery_app.py,
`celery worker -P prefork -c 2` (Celery's default log level), Redis broker
and result backend on 127.0.0.1:6379 db 9 (only that db is flushed).
Dramatiq: bench/dramatiq_app.py, `dramatiq --processes 2 --threads 1` on db
10 and `--processes 2 --threads 8` on db 11 (each flushes only its own db),
its Redis broker and Results middleware. Every process is started by this
script and stopped by PID, also on Ctrl-C or an error. Bench-only
requirements: bench/requirements.txt (installed into the running venv if
missing).
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import importlib.metadata
import json
import os
import platform
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

ALL = [
    "throughput",
    "roundtrip",
    "punctuality",
    "loss",
    "scaling",
    "wasm",
    "scale",
    "one_run_tasks",
    "batch",
    "roundtrip_wait",
    "big_task_running",
]
# The measures taken with every system up together, taking turns.
MAIN = {
    "throughput",
    "roundtrip",
    "punctuality",
    "wasm",
    "one_run_tasks",
    "batch",
    "roundtrip_wait",
    "big_task_running",
}
# Run only when named in --only: not part of the Celery comparison (issue 5),
# and it would lengthen the full run that before/after comparisons repeat.
ON_REQUEST = ["big_task", "beat_lateness", "beat_many", "beat_restart"]
# Issue 18's schedules against Celery beat (django-celery-beat's
# DatabaseScheduler): minutes each, so only when named.
BEAT = {"beat_lateness", "beat_many", "beat_restart"}
BEAT_SCHEDULES = 10_000  # issue 18's count, --quick included: its targets are at this size
BEAT_SECONDS = 60
BIG_TASK_TIMEOUT = 1800.0
ONE_RUN_TASKS = 2000  # issue 17.8's counts, --quick included: its targets are at these sizes
BATCH = 10_000
BIG_TASK_RUNS = 100_000


def ensure_requirements() -> None:
    need = []
    for line in (ROOT / "bench" / "requirements.txt").read_text().splitlines():
        line = line.split("#")[0].strip()
        if not line:
            continue
        name, _, version = line.partition("==")
        try:
            if importlib.metadata.version(name) != version:
                need.append(line)
        except importlib.metadata.PackageNotFoundError:
            need.append(line)
    if need:
        print(f"installing bench requirements: {' '.join(need)}", file=sys.stderr)
        subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", *need], check=True)


ensure_requirements()

from bench import modules, report  # noqa: E402
from bench.celery_side import CeleryBaseline  # noqa: E402
from bench.dramatiq_side import DramatiqBaseline, start_both  # noqa: E402
from bench.ours import OurSystem  # noqa: E402
from bench.procs import Procs  # noqa: E402
from bench.progress import log  # noqa: E402
from bench.shapes import (  # noqa: E402
    batch,
    beat_lateness,
    beat_many,
    big_task_running,
    fairness,
    hash_puzzle,
    listing,
    loss,
    one_run_tasks,
    punctuality,
    roundtrip,
    roundtrip_wait,
    scaling,
    throughput,
)


class Bench:
    """Which systems are up for which shapes, and the results so far."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.quick = args.quick
        self.work = Path(tempfile.mkdtemp(prefix="ww-bench-"))
        self.procs = Procs(self.work)
        self.results: dict[str, Any] = {}
        self.noop = modules.noop_wasm()
        self.cpu = modules.cpu_wasm()
        self.hash = modules.hash_wasm()
        self.cpu_iters = 0
        self.cpu_seconds = 0.0

    # -- configuration -------------------------------------------------------

    @property
    def reps(self) -> int:
        return 1 if self.quick else 3

    @property
    def long_reps(self) -> int:
        """Repetitions of the measures that run half-second modules, whose
        times swing ±20% with this shared machine's load: the median of 5."""
        return 1 if self.quick else 5

    @property
    def tput_n(self) -> int:
        return 500 if self.quick else 2000

    def calibrate(self) -> None:
        if not self.cpu_iters:
            self.cpu_iters, self.cpu_seconds = modules.calibrate_cpu(0.5)
            log(f"CPU-bound module: {self.cpu_iters} iterations = {self.cpu_seconds:.3f} s")

    # -- phases --------------------------------------------------------------

    def start_dramatiq(self) -> list[DramatiqBaseline]:
        """Both Dramatiq configurations, or none (the error recorded) so
        that ours and Celery's measures still run."""
        try:
            return start_both(self.procs)
        except Exception as exc:  # noqa: BLE001 - reported; the rest goes on
            import traceback

            log(f"dramatiq did not start: {exc}")
            self.results.setdefault("errors", {})["dramatiq"] = traceback.format_exc()[-3000:]
            return []

    def phase_main(self, wanted: set[str]) -> None:
        """Measures 1, 2, 3, 6 and issue 17.8's with every system up
        (taking turns, so all see the same background load)."""
        if not wanted & MAIN:
            return
        log("starting our gateway + 2 workers, celery -c 2, dramatiq 2x1 and 2x8")
        us = OurSystem(self.procs, label="main")
        us.start_gateway()
        us.start_worker()
        us.start_worker()
        cel = CeleryBaseline(self.procs, concurrency=2)
        cel.start()
        dqs = self.start_dramatiq()
        try:
            for wasm in (self.noop, self.hash):
                us.warm_up(wasm, input=0, difficulty=1)
                cel.warm_up(wasm, 0, 1)
                for d in dqs:
                    d.warm_up(wasm, 0, 1)
            self.main_measures(wanted, us, cel, dqs)
            self.results.setdefault("gateway", {})["rss_mb_after_main"] = us.gateway_rss_mb()
        finally:
            for d in dqs:
                d.stop()
            cel.stop()
            us.stop()

    def main_measures(
        self,
        wanted: set[str],
        us: OurSystem,
        cel: CeleryBaseline,
        dqs: list[DramatiqBaseline],
    ) -> None:
        """Each measure of the main phase; one failing is recorded and the
        others still run."""
        n, chunk = (50, 25) if self.quick else (200, 50)
        difficulty = 5 if self.quick else 6
        measures: list[tuple[str, Any]] = [
            (
                "throughput",
                lambda: throughput.compare(us, cel, dqs, self.noop, self.tput_n, self.reps),
            ),
            ("roundtrip", lambda: roundtrip.compare(us, cel, dqs, self.noop, n, chunk)),
            ("punctuality", lambda: punctuality.compare(us, cel, dqs, self.noop, self.long_reps)),
            (
                "wasm",
                lambda: hash_puzzle.compare(
                    us, cel, dqs, self.hash, self.work, difficulty, self.long_reps
                ),
            ),
            (
                "one_run_tasks",
                lambda: one_run_tasks.compare(us, cel, dqs, self.noop, ONE_RUN_TASKS, self.reps),
            ),
            ("batch", lambda: batch.compare(us, cel, dqs, self.noop, BATCH, self.reps)),
            ("roundtrip_wait", lambda: roundtrip_wait.compare(us, cel, dqs, self.noop, n, chunk)),
            (
                "big_task_running",
                lambda: big_task_running.measure(
                    us, self.noop, 20_000 if self.quick else BIG_TASK_RUNS
                ),
            ),
        ]
        for name, fn in measures:
            if name not in wanted:
                continue
            try:
                self.results[name] = fn()
            except Exception as exc:  # noqa: BLE001 - one measure failing keeps the others
                import traceback

                log(f"measure {name} FAILED: {exc}")
                self.results.setdefault("errors", {})[name] = traceback.format_exc()[-3000:]

    def phase_scaling(self) -> None:
        self.calibrate()
        self.results["scaling"] = scaling.measure(
            self.procs, self.cpu, self.cpu_iters, self.cpu_seconds, self.long_reps
        )

    def phase_loss(self) -> None:
        self.calibrate()
        self.results["loss"] = loss.measure(self.procs, self.cpu, self.cpu_iters, self.cpu_seconds)

    def phase_scale(self) -> None:
        """Listing over 10,000 stored tasks, then 100 worker connections
        (fairness), on one gateway; its RSS idle and after."""
        tasks = 10_000
        conns = 100
        runs = 1000 if self.quick else 2000
        us = OurSystem(self.procs, label="scale")
        log(f"scale: seeding {tasks} finished tasks")
        seed_s = listing.seed_tasks(us, tasks)
        us.start_gateway()
        try:
            rss_idle = us.gateway_rss_mb()
            us.http.get("/tasks")
            log("scale: GET /tasks first page")
            lst = listing.list_latency(us, 20 if self.quick else 50)
            log(f"scale: {conns} worker connections from one process, {runs} runs")
            fair = fairness.fairness(us, self.noop, conns, runs, self.procs)
            rss = us.gateway_rss_mb()
        finally:
            us.stop()
        self.results["scale"] = {
            "stored_tasks": tasks,
            "seed_seconds": seed_s,
            "list_first_page": lst,
            "gateway_rss_mb_idle": rss_idle,
            "gateway_rss_mb": rss,
            "fairness": fair,
        }

    def phase_beat(self, wanted: set[str]) -> None:
        """Issue 18: a 1 s schedule over a minute (ours and beat side by side),
        then 10,000 schedules (ours alone, then beat alone) and, on them, the
        scheduler's restart. One measure failing keeps the others."""
        if "beat_lateness" in wanted:
            try:
                self.results["beat_lateness"] = beat_lateness.measure(
                    self.procs, self.noop, BEAT_SECONDS
                )
            except Exception:  # noqa: BLE001 - recorded; the others still run
                import traceback

                log("measure beat_lateness FAILED")
                self.results.setdefault("errors", {})["beat_lateness"] = traceback.format_exc()[
                    -3000:
                ]
                self.procs.stop_all()
        window, restart = "beat_many" in wanted, "beat_restart" in wanted
        if window or restart:
            self.results.update(
                beat_many.compare(
                    self.procs, self.noop, BEAT_SCHEDULES, window=window, restart=restart
                )
            )

    def phase_big_task(self) -> None:
        """bench/big_task.py as it is (its own gateway, no Celery), a child
        stopped by PID like the others; its JSON document becomes
        results["big_task"]."""
        out = self.work / "big_task.json"
        argv = [sys.executable, str(ROOT / "bench" / "big_task.py"), "--json", str(out)]
        if self.quick:
            argv += ["--big", "1", "--n", "20"]
        log(f"big task: {' '.join(argv[1:])}")
        proc = self.procs.start("big-task", argv, env=dict(os.environ), cwd=ROOT)
        try:
            code = proc.popen.wait(BIG_TASK_TIMEOUT)
        finally:
            self.procs.stop(proc)
        if code != 0:
            tail = proc.log_path.read_text()[-2000:] if proc.log_path.exists() else ""
            raise RuntimeError(f"bench/big_task.py exited {code}: {tail}")
        self.results["big_task"] = json.loads(out.read_text())

    # -- profile -------------------------------------------------------------

    def profile(self, out_dir: Path) -> None:
        from bench import profiling

        out_dir.mkdir(parents=True, exist_ok=True)
        us = OurSystem(self.procs, label="profile")
        us.start_gateway()
        us.start_worker()
        us.start_worker()
        doc: dict[str, Any] = {}
        try:
            us.warm_up(self.noop)
            assert us.gateway is not None
            targets = {"gateway": us.gateway.pid, "worker": us.workers[0][0].pid}
            with profiling.record(self.procs, targets, out_dir, "throughput") as files:
                r = throughput.ours_one_task(us, self.noop, self.tput_n)
            doc["throughput"] = {"result": r, "profiles": profiling.summarize(files)}
            with profiling.record(self.procs, targets, out_dir, "separate") as files:
                r = throughput.ours_separate_tasks(us, self.noop, self.tput_n // 4)
            doc["separate"] = {"result": r, "profiles": profiling.summarize(files)}
            with profiling.record(self.procs, targets, out_dir, "roundtrip") as files:
                r = roundtrip.ours_polling(us, self.noop, 100)
            doc["roundtrip"] = {"result": r, "profiles": profiling.summarize(files)}
        finally:
            us.stop()
        (out_dir / "profile.json").write_text(json.dumps(doc, indent=2, default=str))
        print(profiling.render(doc))


def environment() -> dict[str, Any]:
    """The machine and the versions the numbers were taken with."""

    def ver(name: str) -> str:
        try:
            return importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            return "-"

    redis_version = "-"
    with contextlib.suppress(Exception):
        from bench import celery_app

        redis_version = celery_app._redis().info()["redis_version"]
    gcc = subprocess.run(["gcc", "--version"], capture_output=True, text=True).stdout
    return {
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "cores": os.cpu_count(),
        "load_average_at_start": os.getloadavg(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "versions": {
            n: ver(n)
            for n in (
                "django",
                "channels",
                "daphne",
                "pycapnp",
                "wasmtime",
                "celery",
                "dramatiq",
                "kombu",
                "billiard",
                "redis",
                "httpx",
                "django-celery-beat",
            )
        },
        "redis_server": redis_version,
        "gcc": gcc.splitlines()[0] if gcc else "-",
        "git_commit": subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True
        ).stdout.strip(),
    }


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="smaller counts, one repetition")
    parser.add_argument("--only", default="", help=f"comma-separated subset of {ALL + ON_REQUEST}")
    parser.add_argument("--out", default="", help="write a markdown report here")
    parser.add_argument("--json", default="", help="write the JSON document here")
    parser.add_argument("--profile", default="", help="record py-spy profiles into this dir")
    args = parser.parse_args()
    wanted = set(ALL) if not args.only else {x.strip() for x in args.only.split(",") if x}
    unknown = wanted - set(ALL) - set(ON_REQUEST)
    if unknown:
        parser.error(f"unknown measures: {sorted(unknown)}")

    bench = Bench(args)

    def on_signal(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, on_signal)
    started = time.time()
    env = environment()
    try:
        if args.profile:
            bench.profile(Path(args.profile))
            return 0
        phases: list[tuple[str, Any]] = [("main", lambda: bench.phase_main(wanted))]
        for name, fn in (
            ("scaling", bench.phase_scaling),
            ("loss", bench.phase_loss),
            ("scale", bench.phase_scale),
            ("big_task", bench.phase_big_task),
        ):
            if name in wanted:
                phases.append((name, fn))
        if wanted & BEAT:
            phases.append(("beat", lambda: bench.phase_beat(wanted)))
        for name, fn in phases:
            try:
                fn()
            except Exception as exc:  # noqa: BLE001 - one phase failing keeps the others
                import traceback

                log(f"phase {name} FAILED: {exc}")
                bench.results.setdefault("errors", {})[name] = traceback.format_exc()[-3000:]
                bench.procs.stop_all()
    finally:
        bench.procs.stop_all()
    env["load_average_at_end"] = os.getloadavg()
    env["bench_seconds"] = time.time() - started
    command = " ".join([".venv/bin/python", "bench/run.py", *sys.argv[1:]])
    doc = {
        "command": command,
        "environment": env,
        "quick": args.quick,
        "cpu_module": {"iterations": bench.cpu_iters, "seconds": bench.cpu_seconds},
        "results": bench.results,
    }
    text = json.dumps(doc, indent=2, default=str)
    print(text)
    tab = report.table(bench.results)
    print()
    print(tab)
    if args.json:
        Path(args.json).write_text(text + "\n")
    if args.out:
        Path(args.out).write_text(report.render_markdown(doc, tab))
        log(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        print("interrupted; every process we started has been stopped", file=sys.stderr)
        sys.exit(130)
