"""The report: a table built from declared measures, and the markdown page.

Each `Measure` declares its name, its unit, where ours and the peer's
(Celery's) figures are in the results, its target and how that target is
judged. The table is one row per measure whose section was measured:
(measure, ours, celery, ratio ours/celery, target, met?). Pure: results in,
text out."""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from bench.measures import div

PEER = "celery"
HEAD = ("measure", "ours", PEER, "ratio", "target", "met?")
# Units written next to every figure; the others are in the measure's name.
UNITS_IN_CELLS = frozenset({"x"})

Section = dict[str, Any]
Getter = Callable[[Section], Any]
Row = tuple[str, str, str, str, str, str]


def cell(value: Any, digits: int = 1, unit: str = "") -> str:
    """One figure as the table shows it: '-' for none, floats to `digits`."""
    suffix = unit if unit in UNITS_IN_CELLS else ""
    if value is None:
        return "-"
    if isinstance(value, float):
        if math.isinf(value):
            return "inf"
        return f"{value:.{digits}f}{suffix}"
    return f"{value}{suffix}"


def verdict(ok: bool | None) -> str:
    return "-" if ok is None else ("yes" if ok else "NO")


def _with_unit(limit: float, unit: str) -> str:
    if not unit:
        return f"{limit:g}"
    return f"{limit:g}{unit}" if unit in UNITS_IN_CELLS else f"{limit:g} {unit}"


class Target(Protocol):
    def text(self, unit: str) -> str: ...

    def judge(self, ours: Any, peer: Any) -> bool | None:
        """True met, False not met, None: cannot say."""
        ...


@dataclass(frozen=True)
class AtMost:
    """Ours at most `limit` (in the measure's unit)."""

    limit: float
    missing: bool | None = None  # the verdict when ours has no figure

    def text(self, unit: str) -> str:
        return f"<= {_with_unit(self.limit, unit)}"

    def judge(self, ours: Any, peer: Any) -> bool | None:
        return self.missing if ours is None else bool(ours <= self.limit)


@dataclass(frozen=True)
class AtLeast:
    """Ours at least `limit`."""

    limit: float
    missing: bool | None = None

    def text(self, unit: str) -> str:
        return f">= {_with_unit(self.limit, unit)}"

    def judge(self, ours: Any, peer: Any) -> bool | None:
        return self.missing if ours is None else bool(ours >= self.limit)


@dataclass(frozen=True)
class Exactly:
    """Ours exactly `value` (a count); no figure is not met."""

    value: int

    def text(self, unit: str) -> str:
        return f"{self.value}"

    def judge(self, ours: Any, peer: Any) -> bool | None:
        return ours == self.value


@dataclass(frozen=True)
class PeerTimesAtMost:
    """Ours at most `factor` times the peer's figure (lower is better)."""

    factor: float = 1.0

    def text(self, unit: str) -> str:
        return f"<= {PEER}" if self.factor == 1 else f"<= {self.factor:g}x {PEER}"

    def judge(self, ours: Any, peer: Any) -> bool | None:
        if div(ours, peer) is None:
            return None
        return bool(ours <= self.factor * peer)


@dataclass(frozen=True)
class PeerTimesAtLeast:
    """Ours at least `factor` times the peer's figure (higher is better)."""

    factor: float

    def text(self, unit: str) -> str:
        return f">= {self.factor:g}x {PEER}"

    def judge(self, ours: Any, peer: Any) -> bool | None:
        ratio = div(ours, peer)
        return None if ratio is None else ratio >= self.factor


def _always(section: Section) -> bool:
    return True


@dataclass(frozen=True)
class Measure:
    """One row of the table.

    section: the key of the results it reads (the row shows when measured);
    name: the row's label (or a function of the section, for counts in it);
    unit: of ours' and the peer's figures ('x' for ratios, shown in cells);
    ours / peer: the figures (peer: one getter, several shown 'a / b', or
    None when the peer has no such figure); ratio: show ours/peer;
    target: what is promised and how it is judged (None: reported only)."""

    section: str
    name: str | Callable[[Section], str]
    unit: str
    ours: Getter
    peer: Getter | tuple[Getter, ...] | None = None
    digits: int = 1
    peer_digits: int | None = None  # when the peer's figures show other digits
    ratio: bool = True
    target: Target | None = None
    when: Callable[[Section], bool] = _always

    def row(self, section: Section) -> Row:
        ours = self.ours(section)
        peers = self._peers(section)
        peer = peers[0] if len(peers) == 1 else None
        ratio = div(ours, peer) if self.ratio and len(peers) == 1 else None
        return (
            self.name(section) if callable(self.name) else self.name,
            cell(ours, self.digits, self.unit),
            " / ".join(cell(p, self._peer_digits, self.unit) for p in peers) if peers else "-",
            cell(ratio, 2, "x") if self.ratio and len(peers) == 1 else "-",
            self.target.text(self.unit) if self.target else "-",
            verdict(self.target.judge(ours, peer)) if self.target else "-",
        )

    @property
    def _peer_digits(self) -> int:
        return self.digits if self.peer_digits is None else self.peer_digits

    def _peers(self, section: Section) -> list[Any]:
        if self.peer is None:
            return []
        getters = self.peer if isinstance(self.peer, tuple) else (self.peer,)
        return [get(section) for get in getters]


def _at(*path: str) -> Getter:
    """The figure at a path of keys in the section; None if any is missing."""

    def get(section: Section) -> Any:
        value: Any = section
        for key in path:
            if not isinstance(value, dict):
                return None
            value = value.get(key)
        return value

    return get


def _throughput_name(label: str) -> Callable[[Section], str]:
    return lambda t: f"throughput, runs/s ({label}, N={t['runs']})"


def _throughput() -> list[Measure]:
    out = [
        Measure(
            "throughput",
            _throughput_name(label),
            "runs/s",
            _at(key, "runs_per_s"),
            _at("celery", "runs_per_s"),
            target=PeerTimesAtLeast(2),
        )
        for label, key in (("1 task x N", "ours_one_task"), ("N tasks", "ours_separate_tasks"))
    ]
    out.append(
        Measure(
            "throughput",
            "CPU ms per run (ours gateway+workers; celery worker+redis)",
            "ms",
            _at("cpu_ms_per_run_median", "ours_one_task", "system_total"),
            _at("cpu_ms_per_run_median", "celery", "system_total"),
            digits=2,
            when=lambda t: bool(t.get("cpu_ms_per_run_median")),
        )
    )
    return out


def _roundtrip() -> list[Measure]:
    out = []
    for side, how, when in (
        ("ours", "", _always),
        (
            "ours_websocket",
            " (ours: result via websocket)",
            lambda t: bool(t.get("ours_websocket")),
        ),
    ):
        out += [
            Measure(
                "roundtrip",
                f"round trip p50, ms{how}",
                "ms",
                _at(side, "p50_ms"),
                _at("celery", "p50_ms"),
                digits=2,
                target=PeerTimesAtMost(1),
                when=when,
            ),
            Measure(
                "roundtrip",
                f"round trip p99, ms{how}",
                "ms",
                _at(side, "p99_ms"),
                _at("celery", "p99_ms"),
                digits=2,
                when=when,
            ),
        ]
    return out


def _lateness_name(shape: str, stat: str) -> Callable[[Section], str]:
    def name(t: Section) -> str:
        reps = len(t[shape]["ours"].get("repetitions", [])) or 1
        of = f" (median of {reps})" if reps > 1 else ""
        return f"lateness {shape} {stat}, ms{of}"

    return name


def _punctuality() -> list[Measure]:
    out = []
    for shape, limit in (("burst", 5.0), ("spaced_10ms", 2.0)):
        for stat in ("p50", "p99", "max"):
            out.append(
                Measure(
                    "punctuality",
                    _lateness_name(shape, stat),
                    "ms",
                    _at(shape, "ours", f"{stat}_ms"),
                    _at(shape, PEER, f"{stat}_ms"),
                    digits=2,
                    target=AtMost(limit) if stat == "p99" else None,
                )
            )
        out.append(
            Measure(
                "punctuality",
                f"started early ({shape})",
                "runs",
                _at(shape, "ours", "early"),
                _at(shape, PEER, "early"),
                ratio=False,
                target=Exactly(0),
            )
        )
    return out


def _loss() -> list[Measure]:
    def both(key: str) -> tuple[Getter, Getter]:
        return _at("celery_default", key), _at("celery_acks_late", key)

    return [
        Measure(
            "loss",
            "worker loss: runs lost (celery default / acks_late)",
            "runs",
            _at("ours", "lost"),
            both("lost"),
            peer_digits=2,
            target=Exactly(0),
        ),
        Measure(
            "loss",
            "worker loss: runs failed",
            "runs",
            _at("ours", "failed"),
            both("failed"),
            peer_digits=2,
            target=Exactly(0),
        ),
        Measure(
            "loss",
            "worker loss: runs re-run",
            "runs",
            _at("ours", "rerun"),
            both("rerun"),
            peer_digits=2,
        ),
        Measure(
            "loss",
            "worker loss: kill -> re-dispatch, s",
            "s",
            _at("ours", "redispatch_s"),
            digits=2,
            target=AtMost(1.0, missing=False),
        ),
        Measure(
            "loss",
            "worker loss: kill -> re-run starts, s",
            "s",
            _at("ours", "rerun_start_s"),
            both("rerun_start_s"),
            digits=2,
        ),
        Measure(
            "loss", "worker loss: kill -> lost detected, s", "s", _at("ours", "detect_s"), digits=3
        ),
    ]


def _scaling() -> list[Measure]:
    return [
        Measure(
            "scaling",
            f"CPU-bound 8 x 0.5 s, {slots}, s",
            "s",
            _at("ours", key),
            _at(PEER, key),
            digits=2,
        )
        for slots, key in (("1 slot", "one_slot_s"), ("2 slots", "two_slots_s"))
    ] + [
        Measure(
            "scaling",
            "CPU-bound speed-up 1 -> 2 slots",
            "x",
            _at("ours", "speedup"),
            _at(PEER, "speedup"),
            digits=2,
            ratio=False,
            target=AtLeast(1.9),
        )
    ]


def _seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def _wasm() -> list[Measure]:
    return [
        Measure(
            "wasm",
            lambda t: (
                f"hash puzzle d={t['difficulty']} end to end, s (native {_seconds(t['native_s'])})"
            ),
            "s",
            _at("ours_s"),
            _at("celery_s"),
            digits=3,
        ),
        Measure(
            "wasm",
            "hash puzzle / native",
            "x",
            lambda t: div(t.get("ours_s"), t.get("native_s")),
            lambda t: div(t.get("celery_s"), t.get("native_s")),
            digits=2,
            ratio=False,
            target=AtMost(1.3),
        ),
    ]


def _scale() -> list[Measure]:
    return [
        Measure(
            "scale",
            lambda t: f"GET /tasks first page p50, ms ({t['stored_tasks']} tasks)",
            "ms",
            _at("list_first_page", "p50_ms"),
            target=AtMost(50),
        ),
        Measure(
            "scale",
            "gateway RSS, MB (after 100 workers + runs)",
            "MB",
            _at("gateway_rss_mb"),
            target=AtMost(200),
        ),
        Measure(
            "scale",
            lambda t: (
                f"fairness max/min runs per worker ({t['fairness']['workers_in_pool']} conns)"
            ),
            "",
            _at("fairness", "ratio"),
            digits=2,
            target=AtMost(1.5),
        ),
    ]


def _big_task_name(label: str) -> Callable[[Section], str]:
    return lambda t: f"{t.get('runs_per_big_task', '?')}-run task: {label}"


def _big_task() -> list[Measure]:
    """bench/big_task.py's figures (issue 14.2): its targets are the detail
    and the cancel of a 100,000-run task; `GET /tasks` "unaffected" has no
    number, so the listing rows are reported beside the listing alone."""
    rows = [
        ("GET /tasks/<id> p50, ms", "detail_alone", AtMost(50)),
        ("GET /tasks/<id> deep page p50, ms", "detail_deep_page_alone", AtMost(50)),
        ("GET /tasks/<id> p50 while loaded, ms", "detail_under_load", None),
        ("DELETE /tasks/<id> (the cancel) p50, ms", "delete_first", AtMost(50)),
        ("DELETE /tasks/<id> again p50, ms", "delete_again", AtMost(50)),
        ("GET /tasks p50 alone, ms", "list_alone", None),
        ("GET /tasks p50 during detail load, ms", "list_during_detail_load", None),
        ("GET /tasks p50 during the cancels, ms", "list_during_deletes", None),
    ]
    return [
        Measure(
            "big_task",
            _big_task_name(label),
            "ms",
            _at(key, "p50_ms"),
            target=target,
        )
        for label, key, target in rows
    ]


MEASURES: tuple[Measure, ...] = (
    *_throughput(),
    *_roundtrip(),
    *_punctuality(),
    *_loss(),
    *_scaling(),
    *_wasm(),
    *_scale(),
    *_big_task(),
)


def rows(results: dict[str, Any], measures: tuple[Measure, ...] = MEASURES) -> list[Row]:
    """The table's rows, in the order declared, for the sections measured."""
    out = []
    for m in measures:
        section = results.get(m.section)
        if section and m.when(section):
            out.append(m.row(section))
    return out


def table(results: dict[str, Any], measures: tuple[Measure, ...] = MEASURES) -> str:
    lines = ["| " + " | ".join(HEAD) + " |", "|" + "---|" * len(HEAD)]
    lines += ["| " + " | ".join(row) + " |" for row in rows(results, measures)]
    return "\n".join(lines)


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
