"""One command: ww-scheduler vs a Celery 5 + Redis baseline on the same
wasm modules, on this machine, in one invocation (issue 5).

    .venv/bin/python bench/run.py [--quick] [--only NAME,...] [--out bench/RESULTS.md]
                                  [--json PATH] [--profile DIR]

Measures (names for --only): throughput, roundtrip, punctuality, loss,
scaling, wasm, scale. --profile DIR instead records py-spy profiles of our
gateway and a worker during the throughput and round-trip loads and prints
the hot spots.

Our system: one gateway (`rungateway`, embedded default: SQLite + in-memory
channel layer, default log level) and two `runworker --concurrency 1`
processes (2 slots), static bootstrap on 127.0.0.1, `--no-discovery` (no
multicast), a fresh WW_STATE_DIR per start. Celery: bench/celery_app.py,
`celery worker -P prefork -c 2` (Celery's default log level), Redis broker
and result backend on 127.0.0.1:6379 db 9 (only that db is flushed).
Every process is started by this script and stopped by PID, also on
Ctrl-C or an error. Bench-only requirements: bench/requirements.txt
(installed into the running venv if missing).
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import importlib.metadata
import json
import math
import os
import platform
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

ALL = ["throughput", "roundtrip", "punctuality", "loss", "scaling", "wasm", "scale"]


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

from bench import celery_side as cs  # noqa: E402
from bench import modules, ours  # noqa: E402
from bench.procs import Procs  # noqa: E402


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def merge_rounds(rounds: list[dict[str, Any]]) -> dict[str, Any]:
    """One result from rounds of the same round-trip measure: percentiles
    over every sample, counts summed, other numbers the rounds' median."""
    failed = [r["error"] for r in rounds if "error" in r]
    if failed:
        return {"error": failed[0], "p50_ms": None, "p99_ms": None}
    samples = [s for r in rounds for s in r["samples_ms"]]
    out: dict[str, Any] = {**rounds[0], "rounds": len(rounds)}
    for key, value in rounds[0].items():
        if isinstance(value, dict):
            out[key] = {k: med([r[key][k] for r in rounds]) for k in value}
        elif isinstance(value, (int, float)) and key not in ("n", "errors"):
            out[key] = med([r[key] for r in rounds])
    out.update(
        p50_ms=ours.pct(samples, 50),
        p99_ms=ours.pct(samples, 99),
        n=sum(r["n"] for r in rounds),
        errors=sum(r.get("errors", 0) for r in rounds),
    )
    del out["samples_ms"]
    return out


def med(values: list[float | None]) -> float | None:
    vals = [v for v in values if v is not None]
    return statistics.median(vals) if vals else None


class Bench:
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

    def phase_main(self, wanted: set[str]) -> None:
        """Measures 1, 2, 3, 6 with both systems up (alternating, so both
        see the same background load)."""
        if not wanted & {"throughput", "roundtrip", "punctuality", "wasm"}:
            return
        log("starting our gateway + 2 workers, and celery -c 2")
        us = ours.OurSystem(self.procs, label="main")
        us.start_gateway()
        us.start_worker()
        us.start_worker()
        cel = cs.CeleryBaseline(self.procs, concurrency=2)
        cel.start()
        try:
            for wasm in (self.noop, self.hash):
                us.warm_up(wasm, input=0, difficulty=1)
                cel.warm_up(wasm, 0, 1)
            if "throughput" in wanted:
                self.throughput(us, cel)
            if "roundtrip" in wanted:
                self.roundtrip(us, cel)
            if "punctuality" in wanted:
                self.punctuality(us, cel)
            if "wasm" in wanted:
                self.wasm(us, cel)
            self.results.setdefault("gateway", {})["rss_mb_after_main"] = us.gateway_rss_mb()
        finally:
            cel.stop()
            us.stop()

    def throughput(self, us: ours.OurSystem, cel: cs.CeleryBaseline) -> None:
        n = self.tput_n
        one, sep, cel_runs = [], [], []
        for rep in range(self.reps):
            log(f"throughput rep {rep + 1}/{self.reps}: ours, 1 task x {n} runs")
            one.append(_client_cpu(n, ours.throughput_one_task, us, self.noop, n))
            log(f"throughput rep {rep + 1}: celery, {n} x apply_async")
            cel_runs.append(_client_cpu(n, cs.throughput, cel, self.noop, n))
            log(f"throughput rep {rep + 1}: ours, {n} one-run tasks (8 concurrent POSTs)")
            sep.append(_client_cpu(n, ours.throughput_separate, us, self.noop, n))
        self.results["throughput"] = {
            "runs": n,
            "ours_one_task": {"runs_per_s": med([r.get("runs_per_s") for r in one]), "reps": one},
            "ours_separate_tasks": {
                "runs_per_s": med([r.get("runs_per_s") for r in sep]),
                "reps": sep,
            },
            "celery": {
                "runs_per_s": med([r.get("runs_per_s") for r in cel_runs]),
                "reps": cel_runs,
            },
            "cpu_ms_per_run_median": {
                "ours_one_task": _cpu_med(one, ("gateway", "workers")),
                "ours_separate_tasks": _cpu_med(sep, ("gateway", "workers")),
                "celery": _cpu_med(cel_runs, ("worker", "redis")),
            },
            "how": "ours: one POST /tasks with repeats=N, delay=0 (one_task) or N POSTs "
            "with repeats=1 (separate); from the first POST to the DB poll (5 ms) "
            "that sees every run final. celery: N apply_async then get() each.",
        }

    def roundtrip(self, us: ours.OurSystem, cel: cs.CeleryBaseline) -> None:
        """In rounds of 50 per client, taking turns, so that a slow spell of
        this shared machine falls on all three alike."""
        n, chunk = (50, 25) if self.quick else (200, 50)
        log(f"round trip: {n} each, in turns of {chunk}")
        parts: dict[str, list[dict[str, Any]]] = {"ours": [], "ours_websocket": [], "celery": []}
        for _ in range(n // chunk):
            parts["ours"].append(ours.round_trip(us, self.noop, chunk))
            try:
                parts["ours_websocket"].append(ours.round_trip_ws(us, self.noop, chunk))
            except Exception as exc:  # noqa: BLE001 - reported, the rest goes on
                parts["ours_websocket"].append({"error": f"{type(exc).__name__}: {exc}"})
            parts["celery"].append(cs.round_trip(cel, self.noop, chunk))
        self.results["roundtrip"] = {name: merge_rounds(rs) for name, rs in parts.items()}

    def punctuality(self, us: ours.OurSystem, cel: cs.CeleryBaseline) -> None:
        """Each shape `long_reps` times, taking turns: one burst of 100 is
        at the mercy of a slow moment of this shared machine (its p99 is
        the 99th run), so the medians of the repetitions are reported,
        every repetition's numbers kept, and a run started early in any
        of them counts."""
        out: dict[str, Any] = {}
        for name, spacing in (("burst", 0.0), ("spaced_10ms", 0.01)):
            log(f"punctuality {name}: 100 runs due 1 s ahead, {self.long_reps} times")
            reps: dict[str, list[dict[str, Any]]] = {"ours": [], "celery": []}
            for _ in range(self.long_reps):
                reps["ours"].append(ours.punctuality(us, self.noop, 100, spacing))
                reps["celery"].append(cs.punctuality(cel, self.noop, 100, spacing))
            out[name] = {side: _lateness_med(runs) for side, runs in reps.items()}
        self.results["punctuality"] = out

    def wasm(self, us: ours.OurSystem, cel: cs.CeleryBaseline) -> None:
        difficulty = 5 if self.quick else 6
        exe = modules.build_native_hash(self.work)
        native, ours_r, cel_r = [], [], []
        answer = ""
        for rep in range(self.long_reps):
            log(f"hash puzzle difficulty {difficulty}, rep {rep + 1}/{self.long_reps}")
            t, answer = modules.time_native_hash(exe, 0, difficulty)
            native.append(t)
            ours_r.append(ours.hash_puzzle(us, self.hash, difficulty))
            cel_r.append(cs.hash_puzzle(cel, self.hash, difficulty))
        in_process = modules.time_run(self.hash, 0, difficulty, repeat=1)
        self.results["wasm"] = {
            "difficulty": difficulty,
            "native_answer": answer,
            "native_s": med(native),
            "ours_s": med([r["seconds"] for r in ours_r]),
            "ours_exec_s": med([r["exec_seconds"] for r in ours_r]),
            "celery_s": med([r["seconds"] for r in cel_r]),
            "celery_exec_s": med([r["exec_seconds"] for r in cel_r]),
            "wasmtime_in_process_s": in_process,
            "answers_agree": all(r["result"] == answer for r in ours_r + cel_r),
            "reps": {"ours": ours_r, "celery": cel_r, "native": native},
            "how": "native: gcc -O2 of examples/hash/hash.c, wall time of the process; "
            "ours: POST -> final state on /ws/tasks/<id>/; celery: apply_async -> get",
        }

    def phase_scaling(self) -> None:
        self.calibrate()
        n = 8
        log("scaling: ours with 1 slot")
        us = ours.OurSystem(self.procs, label="scaling")
        us.start_gateway()
        us.start_worker()
        out: dict[str, Any] = {"runs": n, "run_seconds": self.cpu_seconds}
        try:
            us.warm_up(self.cpu, runs=2, input=1, difficulty=1000)
            one = [ours.cpu_batch(us, self.cpu, n, self.cpu_iters) for _ in range(self.long_reps)]
            us.start_worker()
            us.warm_up(self.cpu, runs=4, input=1, difficulty=1000)
            log("scaling: ours with 2 slots")
            two = [ours.cpu_batch(us, self.cpu, n, self.cpu_iters) for _ in range(self.long_reps)]
        finally:
            us.stop()
        one_s, two_s = med([r["seconds"] for r in one]), med([r["seconds"] for r in two])
        out["ours"] = {
            "one_slot_s": one_s,
            "two_slots_s": two_s,
            "speedup": _div(one_s, two_s),
            "mean_exec_s": {
                "one_slot": med([r["mean_exec_s"] for r in one]),
                "two_slots": med([r["mean_exec_s"] for r in two]),
            },
            "reps": {
                "one_slot_s": [r["seconds"] for r in one],
                "two_slots_s": [r["seconds"] for r in two],
            },
        }
        cel_t: dict[int, float] = {}
        cel_exec: dict[int, float] = {}
        for conc in (1, 2):
            log(f"scaling: celery -c {conc}")
            cel = cs.CeleryBaseline(self.procs, concurrency=conc, label=f"celery-c{conc}")
            cel.start()
            try:
                cel.warm_up(self.cpu, 1, 1000, runs=2 * conc)
                rs = [cs.cpu_batch(cel, self.cpu, n, self.cpu_iters) for _ in range(self.long_reps)]
                cel_t[conc] = med([r["seconds"] for r in rs])
                cel_exec[conc] = med([r["mean_exec_s"] for r in rs])
            finally:
                cel.stop()
        out["celery"] = {
            "one_slot_s": cel_t[1],
            "two_slots_s": cel_t[2],
            "speedup": _div(cel_t[1], cel_t[2]),
            "mean_exec_s": {"one_slot": cel_exec[1], "two_slots": cel_exec[2]},
        }
        self.results["scaling"] = out

    def phase_loss(self) -> None:
        self.calibrate()
        out: dict[str, Any] = {"runs": 20, "run_seconds": self.cpu_seconds}
        log("worker loss: ours (SIGKILL one of two runworker processes mid-run)")
        us = ours.OurSystem(self.procs, label="loss")
        us.start_gateway()
        us.start_worker()
        us.start_worker()
        try:
            us.warm_up(self.cpu, runs=4, input=1, difficulty=1000)
            out["ours"] = ours.worker_loss(us, self.cpu, self.cpu_iters)
        finally:
            us.stop()
        for variant, acks_late in (("celery_default", False), ("celery_acks_late", True)):
            log(f"worker loss: {variant} (SIGKILL one prefork pool process mid-run)")
            cel = cs.CeleryBaseline(
                self.procs, concurrency=2, acks_late=acks_late, label=variant.replace("_", "-")
            )
            cel.start()
            try:
                cel.warm_up(self.cpu, 1, 1000, runs=4)
                out[variant] = cs.worker_loss(cel, self.cpu, self.cpu_iters)
            finally:
                cel.stop()
        self.results["loss"] = out

    def phase_scale(self) -> None:
        tasks = 10_000
        conns = 100
        runs = 1000 if self.quick else 2000
        us = ours.OurSystem(self.procs, label="scale")
        log(f"scale: seeding {tasks} finished tasks")
        seed_s = ours.seed_tasks(us, tasks)
        us.start_gateway()
        try:
            rss_idle = us.gateway_rss_mb()
            us.http.get("/tasks")
            log("scale: GET /tasks first page")
            lst = ours.list_latency(us, 20 if self.quick else 50)
            log(f"scale: {conns} worker connections from one process, {runs} runs")
            fair = ours.fairness(us, self.noop, conns, runs, self.procs)
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

    # -- profile -------------------------------------------------------------

    def profile(self, out_dir: Path) -> None:
        from bench import profiling

        out_dir.mkdir(parents=True, exist_ok=True)
        us = ours.OurSystem(self.procs, label="profile")
        us.start_gateway()
        us.start_worker()
        us.start_worker()
        report: dict[str, Any] = {}
        try:
            us.warm_up(self.noop)
            assert us.gateway is not None
            targets = {"gateway": us.gateway.pid, "worker": us.workers[0][0].pid}
            with profiling.record(self.procs, targets, out_dir, "throughput") as files:
                r = ours.throughput_one_task(us, self.noop, self.tput_n)
            report["throughput"] = {"result": r, "profiles": profiling.summarize(files)}
            with profiling.record(self.procs, targets, out_dir, "separate") as files:
                r = ours.throughput_separate(us, self.noop, self.tput_n // 4)
            report["separate"] = {"result": r, "profiles": profiling.summarize(files)}
            with profiling.record(self.procs, targets, out_dir, "roundtrip") as files:
                r = ours.round_trip(us, self.noop, 100)
            report["roundtrip"] = {"result": r, "profiles": profiling.summarize(files)}
        finally:
            us.stop()
        (out_dir / "profile.json").write_text(json.dumps(report, indent=2, default=str))
        print(profiling.render(report))


def _lateness_med(reps: list[dict[str, Any]]) -> dict[str, Any]:
    """Medians of the repetitions' lateness figures; runs started early in all."""
    return {
        **{key: med([r.get(key) for r in reps]) for key in ("p50_ms", "p99_ms", "max_ms")},
        "early": sum(r.get("early") or 0 for r in reps),
        "min_ms": min((r["min_ms"] for r in reps if r.get("min_ms") is not None), default=None),
        "n": sum(r.get("n") or 0 for r in reps),
        "repetitions": reps,
    }


def _cpu_med(reps: list[dict[str, Any]], parts: tuple[str, ...]) -> dict[str, Any]:
    out = {p: med([r.get(f"{p}_cpu_ms_per_run") for r in reps]) for p in (*parts, "client")}
    out["system_total"] = sum(out[p] or 0 for p in parts)
    return out


def _client_cpu(n: int, fn: Any, *args: Any) -> dict[str, Any]:
    c0 = time.process_time()
    out = fn(*args)
    out["client_cpu_ms_per_run"] = (time.process_time() - c0) * 1000 / n
    return out


def _div(a: float | None, b: float | None) -> float | None:
    if a is None or b is None or b == 0:
        return None
    return a / b


# -- report -------------------------------------------------------------------


def environment() -> dict[str, Any]:
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
                "kombu",
                "billiard",
                "redis",
                "httpx",
            )
        },
        "redis_server": redis_version,
        "gcc": gcc.splitlines()[0] if gcc else "-",
        "git_commit": subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True
        ).stdout.strip(),
    }


def rows(r: dict[str, Any]) -> list[tuple[str, str, str, str, str, str]]:
    """(measure, ours, celery, ratio ours/celery, target, met)."""
    out = []

    def f(v: Any, unit: str = "", nd: int = 1) -> str:
        if v is None:
            return "-"
        if isinstance(v, float):
            if math.isinf(v):
                return "inf"
            return f"{v:.{nd}f}{unit}"
        return f"{v}{unit}"

    def met(ok: bool | None) -> str:
        return "-" if ok is None else ("yes" if ok else "NO")

    if t := r.get("throughput"):
        o1, o2, c = (
            t["ours_one_task"]["runs_per_s"],
            t["ours_separate_tasks"]["runs_per_s"],
            t["celery"]["runs_per_s"],
        )
        for label, o in (("1 task x N", o1), ("N tasks", o2)):
            ratio = _div(o, c)
            out.append(
                (
                    f"throughput, runs/s ({label}, N={t['runs']})",
                    f(o),
                    f(c),
                    f(ratio, "x", 2),
                    ">= 2x celery",
                    met(ratio >= 2 if ratio is not None else None),
                )
            )
        cpu = t.get("cpu_ms_per_run_median")
        if cpu:
            o, c = cpu["ours_one_task"]["system_total"], cpu["celery"]["system_total"]
            out.append(
                (
                    "CPU ms per run (ours gateway+workers; celery worker+redis)",
                    f(o, nd=2),
                    f(c, nd=2),
                    f(_div(o, c), "x", 2),
                    "-",
                    "-",
                )
            )
    if t := r.get("roundtrip"):
        o, c = t["ours"], t["celery"]
        ratio = _div(o["p50_ms"], c["p50_ms"])
        out.append(
            (
                "round trip p50, ms",
                f(o["p50_ms"], nd=2),
                f(c["p50_ms"], nd=2),
                f(ratio, "x", 2),
                "<= celery",
                met(o["p50_ms"] <= c["p50_ms"] if ratio is not None else None),
            )
        )
        out.append(
            (
                "round trip p99, ms",
                f(o["p99_ms"], nd=2),
                f(c["p99_ms"], nd=2),
                f(_div(o["p99_ms"], c["p99_ms"]), "x", 2),
                "-",
                "-",
            )
        )
        if w := t.get("ours_websocket"):
            ratio = _div(w.get("p50_ms"), c["p50_ms"])
            out.append(
                (
                    "round trip p50, ms (ours: result via websocket)",
                    f(w.get("p50_ms"), nd=2),
                    f(c["p50_ms"], nd=2),
                    f(ratio, "x", 2),
                    "<= celery",
                    met(ratio <= 1 if ratio is not None else None),
                )
            )
            out.append(
                (
                    "round trip p99, ms (ours: result via websocket)",
                    f(w.get("p99_ms"), nd=2),
                    f(c["p99_ms"], nd=2),
                    f(_div(w.get("p99_ms"), c["p99_ms"]), "x", 2),
                    "-",
                    "-",
                )
            )
    if t := r.get("punctuality"):
        for name, limit in (("burst", 5.0), ("spaced_10ms", 2.0)):
            o, c = t[name]["ours"], t[name]["celery"]
            reps = len(o.get("repetitions", [])) or 1
            of = f" (median of {reps})" if reps > 1 else ""
            for stat in ("p50_ms", "p99_ms", "max_ms"):
                target = f"<= {limit:g} ms" if stat == "p99_ms" else "-"
                ok = (o[stat] <= limit) if stat == "p99_ms" and o[stat] is not None else None
                out.append(
                    (
                        f"lateness {name} {stat[:-3]}, ms{of}",
                        f(o[stat], nd=2),
                        f(c[stat], nd=2),
                        f(_div(o[stat], c[stat]), "x", 2),
                        target,
                        met(ok),
                    )
                )
            out.append(
                (
                    f"started early ({name})",
                    f(o["early"]),
                    f(c["early"]),
                    "-",
                    "0",
                    met(o["early"] == 0),
                )
            )
    if t := r.get("loss"):
        o = t["ours"]
        cd, ca = t.get("celery_default", {}), t.get("celery_acks_late", {})

        def both(key: str, nd: int = 2) -> str:
            return f"{f(cd.get(key), nd=nd)} / {f(ca.get(key), nd=nd)}"

        out.append(
            (
                "worker loss: runs lost (celery default / acks_late)",
                f(o.get("lost")),
                both("lost"),
                "-",
                "0",
                met(o.get("lost") == 0),
            )
        )
        out.append(
            (
                "worker loss: runs failed",
                f(o.get("failed")),
                both("failed"),
                "-",
                "0",
                met(o.get("failed") == 0),
            )
        )
        out.append(("worker loss: runs re-run", f(o.get("rerun")), both("rerun"), "-", "-", "-"))
        red = o.get("redispatch_s")
        out.append(
            (
                "worker loss: kill -> re-dispatch, s",
                f(red, nd=2),
                "-",
                "-",
                "<= 1 s",
                met(red <= 1.0 if red is not None else False),
            )
        )
        out.append(
            (
                "worker loss: kill -> re-run starts, s",
                f(o.get("rerun_start_s"), nd=2),
                both("rerun_start_s"),
                "-",
                "-",
                "-",
            )
        )
        out.append(
            (
                "worker loss: kill -> lost detected, s",
                f(o.get("detect_s"), nd=3),
                "-",
                "-",
                "-",
                "-",
            )
        )
    if t := r.get("scaling"):
        o, c = t["ours"], t["celery"]
        out.append(
            (
                "CPU-bound 8 x 0.5 s, 1 slot, s",
                f(o["one_slot_s"], nd=2),
                f(c["one_slot_s"], nd=2),
                f(_div(o["one_slot_s"], c["one_slot_s"]), "x", 2),
                "-",
                "-",
            )
        )
        out.append(
            (
                "CPU-bound 8 x 0.5 s, 2 slots, s",
                f(o["two_slots_s"], nd=2),
                f(c["two_slots_s"], nd=2),
                f(_div(o["two_slots_s"], c["two_slots_s"]), "x", 2),
                "-",
                "-",
            )
        )
        out.append(
            (
                "CPU-bound speed-up 1 -> 2 slots",
                f(o["speedup"], "x", 2),
                f(c["speedup"], "x", 2),
                "-",
                ">= 1.9x",
                met(o["speedup"] >= 1.9 if o["speedup"] else None),
            )
        )
    if t := r.get("wasm"):
        ratio = _div(t["ours_s"], t["native_s"])
        out.append(
            (
                f"hash puzzle d={t['difficulty']} end to end, s (native {t['native_s']:.3f})",
                f(t["ours_s"], nd=3),
                f(t["celery_s"], nd=3),
                f(_div(t["ours_s"], t["celery_s"]), "x", 2),
                "-",
                "-",
            )
        )
        out.append(
            (
                "hash puzzle / native",
                f(ratio, "x", 2),
                f(_div(t["celery_s"], t["native_s"]), "x", 2),
                "-",
                "<= 1.3x",
                met(ratio <= 1.3 if ratio else None),
            )
        )
    if t := r.get("scale"):
        lst, fair = t["list_first_page"], t["fairness"]
        out.append(
            (
                f"GET /tasks first page p50, ms ({t['stored_tasks']} tasks)",
                f(lst["p50_ms"], nd=1),
                "-",
                "-",
                "<= 50 ms",
                met(lst["p50_ms"] <= 50),
            )
        )
        out.append(
            (
                "gateway RSS, MB (after 100 workers + runs)",
                f(t["gateway_rss_mb"]),
                "-",
                "-",
                "<= 200 MB",
                met(t["gateway_rss_mb"] <= 200),
            )
        )
        out.append(
            (
                f"fairness max/min runs per worker ({fair['workers_in_pool']} conns)",
                f(fair["ratio"], nd=2),
                "-",
                "-",
                "<= 1.5",
                met(fair["ratio"] <= 1.5 if fair["ratio"] is not None else None),
            )
        )
    return out


def table(r: dict[str, Any]) -> str:
    head = ("measure", "ours", "celery", "ratio", "target", "met?")
    body = rows(r)
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(row) + " |" for row in body]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="smaller counts, one repetition")
    parser.add_argument("--only", default="", help=f"comma-separated subset of {ALL}")
    parser.add_argument("--out", default="", help="write a markdown report here")
    parser.add_argument("--json", default="", help="write the JSON document here")
    parser.add_argument("--profile", default="", help="record py-spy profiles into this dir")
    args = parser.parse_args()
    wanted = set(ALL) if not args.only else {x.strip() for x in args.only.split(",") if x}
    unknown = wanted - set(ALL)
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
        ):
            if name in wanted:
                phases.append((name, fn))
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
    tab = table(bench.results)
    print()
    print(tab)
    if args.json:
        Path(args.json).write_text(text + "\n")
    if args.out:
        Path(args.out).write_text(render_markdown(doc, tab))
        log(f"wrote {args.out}")
    return 0


def render_markdown(doc: dict[str, Any], tab: str) -> str:
    env = doc["environment"]
    return f"""# Benchmark: ww-scheduler vs Celery 5 + Redis

Produced by:

```sh
{doc["command"]}
```

{env["date"]}, {env["cores"]} cores, Python {env["python"]}, {env["platform"]};
load average at start {", ".join(f"{x:.2f}" for x in env["load_average_at_start"])},
at end {", ".join(f"{x:.2f}" for x in env["load_average_at_end"])}; took
{env["bench_seconds"]:.0f} s. Our system: gateway + 2 x `runworker --concurrency 1`
(SQLite, in-memory channel layer, default log level). Celery {env["versions"]["celery"]}:
prefork `-c 2`, Redis {env["redis_server"]} broker and result backend (db 9).
Ratio = ours / celery. How each number is taken: `bench/README.md`.

{tab}

<details><summary>The whole JSON document</summary>

```json
{json.dumps(doc, indent=2, default=str)}
```

</details>
"""


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        print("interrupted; every process we started has been stopped", file=sys.stderr)
        sys.exit(130)
