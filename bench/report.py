"""The report: a table built from declared measures, and the markdown page.

Each `Measure` declares its name, its unit, where ours and the peers'
(Celery's; Dramatiq's two configurations, 2x1 and 2x8) figures are in the
results, its target and how that target is judged. The table is one row per
measure whose section was measured: (measure, ours, celery, dramatiq 2x1,
dramatiq 2x8, ours / fastest peer, target, met?); the ratio is against the
fastest peer configuration of that row (the highest figure where higher is
better, else the lowest), named in the cell. Results without any Dramatiq
figure (runs from before it was a peer) give the table they gave then:
(measure, ours, celery, ratio ours/celery, target, met?). Pure: results in,
text out."""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from bench.measures import div

PEER = "celery"
DRAMATIQ = ("dramatiq_2x1", "dramatiq_2x8")  # the results' keys of its configurations
LABELS = {PEER: "celery", "dramatiq_2x1": "dramatiq 2x1", "dramatiq_2x8": "dramatiq 2x8"}
BEST = "best"  # a target against the fastest peer configuration of its row
HEAD = ("measure", "ours", PEER, "ratio", "target", "met?")
HEAD_ALL = (
    "measure",
    "ours",
    *LABELS.values(),
    "ours / fastest peer",
    "target",
    "met?",
)
# Units written next to every figure; the others are in the measure's name.
UNITS_IN_CELLS = frozenset({"x"})
NOT_AVAILABLE = "n/a"

Section = dict[str, Any]
Getter = Callable[[Section], Any]
Row = tuple[str, ...]
# The peers' single figures of a row, by results key (a peer shown 'a / b' has none).
Peers = Mapping[str, Any]


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


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def fastest(peers: Peers, higher_is_better: bool) -> tuple[str, float] | None:
    """The peer configuration with the best figure (highest or lowest), and
    that figure; None when no peer has one."""
    figures = [(name, v) for name, v in peers.items() if _number(v)]
    if not figures:
        return None
    pick = max if higher_is_better else min
    return pick(figures, key=lambda item: item[1])


def _peer_figure(peers: Peers, peer: str, higher_is_better: bool) -> Any:
    if peer != BEST:
        return peers.get(peer)
    best = fastest(peers, higher_is_better)
    return None if best is None else best[1]


def _peer_text(peer: str) -> str:
    return "fastest peer" if peer == BEST else LABELS.get(peer, peer)


class Target(Protocol):
    def text(self, unit: str) -> str: ...

    def judge(self, ours: Any, peers: Peers) -> bool | None:
        """True met, False not met, None: cannot say."""
        ...


@dataclass(frozen=True)
class AtMost:
    """Ours at most `limit` (in the measure's unit)."""

    limit: float
    missing: bool | None = None  # the verdict when ours has no figure

    def text(self, unit: str) -> str:
        return f"<= {_with_unit(self.limit, unit)}"

    def judge(self, ours: Any, peers: Peers) -> bool | None:
        return self.missing if ours is None else bool(ours <= self.limit)


@dataclass(frozen=True)
class AtLeast:
    """Ours at least `limit`."""

    limit: float
    missing: bool | None = None

    def text(self, unit: str) -> str:
        return f">= {_with_unit(self.limit, unit)}"

    def judge(self, ours: Any, peers: Peers) -> bool | None:
        return self.missing if ours is None else bool(ours >= self.limit)


@dataclass(frozen=True)
class Exactly:
    """Ours exactly `value` (a count); no figure is not met."""

    value: int

    def text(self, unit: str) -> str:
        return f"{self.value}"

    def judge(self, ours: Any, peers: Peers) -> bool | None:
        return ours == self.value


@dataclass(frozen=True)
class PeerTimesAtMost:
    """Ours at most `factor` times a peer's figure (lower is better): the
    peer named, or (BEST) the lowest of the row's peer configurations."""

    factor: float = 1.0
    peer: str = PEER

    def text(self, unit: str) -> str:
        peer = _peer_text(self.peer)
        return f"<= {peer}" if self.factor == 1 else f"<= {self.factor:g}x {peer}"

    def judge(self, ours: Any, peers: Peers) -> bool | None:
        peer = _peer_figure(peers, self.peer, higher_is_better=False)
        if div(ours, peer) is None:
            return None
        return bool(ours <= self.factor * peer)


@dataclass(frozen=True)
class PeerTimesAtLeast:
    """Ours at least `factor` times a peer's figure (higher is better): the
    peer named, or (BEST) the highest of the row's peer configurations."""

    factor: float
    peer: str = PEER

    def text(self, unit: str) -> str:
        peer = _peer_text(self.peer)
        return f">= {peer}" if self.factor == 1 else f">= {self.factor:g}x {peer}"

    def judge(self, ours: Any, peers: Peers) -> bool | None:
        ratio = div(ours, _peer_figure(peers, self.peer, higher_is_better=True))
        return None if ratio is None else ratio >= self.factor


@dataclass(frozen=True)
class AllOf:
    """Every one of the targets: not met if one is not, cannot say if one
    cannot, else met."""

    targets: tuple[Target, ...]

    def text(self, unit: str) -> str:
        return " and ".join(t.text(unit) for t in self.targets)

    def judge(self, ours: Any, peers: Peers) -> bool | None:
        verdicts = [t.judge(ours, peers) for t in self.targets]
        if False in verdicts:
            return False
        return None if None in verdicts else True


def _always(section: Section) -> bool:
    return True


def ours_available(section: Section) -> bool:
    """False when our side of the section reported its endpoint missing."""
    ours = section.get("ours")
    return not (isinstance(ours, dict) and ours.get("available") is False)


@dataclass(frozen=True)
class Measure:
    """One row of the table.

    section: the key of the results it reads (the row shows when measured);
    name: the row's label (or a function of the section, for counts in it);
    unit: of ours' and the peer's figures ('x' for ratios, shown in cells);
    ours / peer: the figures (peer, Celery's: one getter, several shown
    'a / b', or None when the peer has no such figure); dramatiq: its 2x1
    and 2x8 configurations' figures (None: no Dramatiq figure);
    higher_is_better: which peer figure is the fastest (runs/s: the
    highest; times: the lowest); ratio: show ours/peer; target: what is
    promised and how it is judged (None: reported only); available: False
    when ours could not be measured (an endpoint not served), shown 'n/a'."""

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
    dramatiq: tuple[Getter, Getter] | None = None
    higher_is_better: bool = False
    available: Callable[[Section], bool] = _always

    def row(self, section: Section, *, with_dramatiq: bool = False) -> Row:
        """(measure, ours, celery, [dramatiq 2x1, dramatiq 2x8,] ratio,
        target, met?): the Dramatiq columns and a ratio against the fastest
        peer when with_dramatiq, else the ratio against Celery."""
        ours = self.ours(section) if self.available(section) else None
        celery = self._celery(section)
        dq = self.dramatiq_figures(section)
        peers: dict[str, Any] = {PEER: celery[0]} if len(celery) == 1 else {}
        peers.update(zip(DRAMATIQ, dq, strict=True))
        name = self.name(section) if callable(self.name) else self.name
        ours_cell = cell(ours, self.digits, self.unit)
        if not self.available(section):
            ours_cell = NOT_AVAILABLE
        celery_cell = (
            " / ".join(cell(p, self._peer_digits, self.unit) for p in celery) if celery else "-"
        )
        if with_dramatiq:
            ratio_cell = self._ratio_to_fastest(ours, peers)
            peer_cells: tuple[str, ...] = (
                celery_cell,
                *(cell(v, self._peer_digits, self.unit) for v in dq),
            )
        else:
            ratio = div(ours, celery[0]) if self.ratio and len(celery) == 1 else None
            ratio_cell = cell(ratio, 2, "x") if self.ratio and len(celery) == 1 else "-"
            peer_cells = (celery_cell,)
        return (
            name,
            ours_cell,
            *peer_cells,
            ratio_cell,
            self.target.text(self.unit) if self.target else "-",
            verdict(self.target.judge(ours, peers)) if self.target else "-",
        )

    def dramatiq_figures(self, section: Section) -> tuple[Any, Any]:
        if self.dramatiq is None:
            return (None, None)
        return (self.dramatiq[0](section), self.dramatiq[1](section))

    def _ratio_to_fastest(self, ours: Any, peers: Peers) -> str:
        best = fastest(peers, self.higher_is_better) if self.ratio else None
        ratio = div(ours, best[1]) if best is not None else None
        if best is None or ratio is None:
            return "-"
        return f"{cell(ratio, 2, 'x')} ({LABELS[best[0]]})"

    @property
    def _peer_digits(self) -> int:
        return self.digits if self.peer_digits is None else self.peer_digits

    def _celery(self, section: Section) -> list[Any]:
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


SLOT = "<peer>"  # in a path of keys: where each Dramatiq configuration's key goes


def _dq_at(*path: str) -> tuple[Getter, Getter]:
    """The two Dramatiq configurations' figures at a path of keys, SLOT
    standing for the configuration's key."""
    return _dq(lambda d: _at(*(d if key == SLOT else key for key in path)))


def _dq(path: Callable[[str], Getter]) -> tuple[Getter, Getter]:
    """The two Dramatiq configurations' getters, from the getter of a
    peer's figure given its results key."""
    return (path(DRAMATIQ[0]), path(DRAMATIQ[1]))


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
            dramatiq=_dq(lambda d: _at(d, "runs_per_s")),
            higher_is_better=True,
        )
        for label, key in (("1 task x N", "ours_one_task"), ("N tasks", "ours_separate_tasks"))
    ]
    out.append(
        Measure(
            "throughput",
            lambda t: (
                "CPU ms per run (ours gateway+workers; "
                + ("peers" if set(DRAMATIQ) & set(t["cpu_ms_per_run_median"]) else "celery")
                + " worker+redis)"
            ),
            "ms",
            _at("cpu_ms_per_run_median", "ours_one_task", "system_total"),
            _at("cpu_ms_per_run_median", "celery", "system_total"),
            digits=2,
            dramatiq=_dq(lambda d: _at("cpu_ms_per_run_median", d, "system_total")),
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
                dramatiq=_dq(lambda d: _at(d, "p50_ms")),
            ),
            Measure(
                "roundtrip",
                f"round trip p99, ms{how}",
                "ms",
                _at(side, "p99_ms"),
                _at("celery", "p99_ms"),
                digits=2,
                when=when,
                dramatiq=_dq(lambda d: _at(d, "p99_ms")),
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
                    dramatiq=_dq_at(shape, SLOT, f"{stat}_ms"),
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
                dramatiq=_dq_at(shape, SLOT, "early"),
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


def _scaling_dramatiq(key: str) -> tuple[Getter, Getter]:
    """Dramatiq's 1 -> 2 slots are --processes 1, then 2, x --threads 1:
    shown in the 2x1 column (2 slots is that configuration)."""
    return (_at("dramatiq", key), lambda t: None)


def _scaling() -> list[Measure]:
    return [
        Measure(
            "scaling",
            f"CPU-bound 8 x 0.5 s, {slots}, s",
            "s",
            _at("ours", key),
            _at(PEER, key),
            digits=2,
            dramatiq=_scaling_dramatiq(key),
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
            dramatiq=_scaling_dramatiq("speedup"),
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
            dramatiq=_dq(lambda d: _at(f"{d}_s")),
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
            dramatiq=_dq(lambda d: lambda t: div(t.get(f"{d}_s"), t.get("native_s"))),
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


def _one_run_tasks() -> list[Measure]:
    return [
        Measure(
            "one_run_tasks",
            lambda t: f"one-run tasks, runs/s (N={t['runs']} requests; ours JSON by hash)",
            "runs/s",
            _at("ours", "runs_per_s"),
            _at(PEER, "runs_per_s"),
            target=AllOf((PeerTimesAtLeast(1, BEST), PeerTimesAtLeast(2))),
            dramatiq=_dq(lambda d: _at(d, "runs_per_s")),
            higher_is_better=True,
            available=ours_available,
        )
    ]


def _batch() -> list[Measure]:
    return [
        Measure(
            "batch",
            lambda t: f"batch of {t['runs']} one-run tasks, runs/s (ours /tasks/batch; groups)",
            "runs/s",
            _at("ours", "runs_per_s"),
            _at(PEER, "runs_per_s"),
            target=AllOf((AtLeast(10_000), PeerTimesAtLeast(3, BEST))),
            dramatiq=_dq(lambda d: _at(d, "runs_per_s")),
            higher_is_better=True,
            available=ours_available,
        )
    ]


def _roundtrip_wait() -> list[Measure]:
    return [
        Measure(
            "roundtrip_wait",
            f"round trip {stat}, ms (ours: JSON POST then GET ?wait)",
            "ms",
            _at("ours", f"{stat}_ms"),
            _at(PEER, f"{stat}_ms"),
            digits=2,
            target=PeerTimesAtMost(1, BEST) if stat == "p50" else None,
            dramatiq=_dq_at(SLOT, f"{stat}_ms"),
            available=ours_available,
        )
        for stat in ("p50", "p99")
    ]


def _big_task_running() -> list[Measure]:
    def name(label: str) -> Callable[[Section], str]:
        return lambda t: f"{t['runs_per_big_task']}-run task while it runs: {label}"

    return [
        Measure(
            "big_task_running",
            name("GET /tasks/<id> p50, ms"),
            "ms",
            _at("detail_while_running", "p50_ms"),
            target=AtMost(50),
        ),
        Measure(
            "big_task_running",
            name("GET /tasks/<id> p99, ms"),
            "ms",
            _at("detail_while_running", "p99_ms"),
        ),
        Measure(
            "big_task_running",
            name("runs/s meanwhile"),
            "runs/s",
            _at("runs_per_s"),
        ),
    ]


def _beat_lateness() -> list[Measure]:
    """Issue 18's 1 s schedule over a minute, ours and Celery beat's (in the
    Celery column: beat + a prefork worker), each firing's start on a worker
    after its fire time (beat's: after the grid from its first fire time)."""

    def name(what: str) -> Callable[[Section], str]:
        return lambda t: f"1 s schedule over {t['seconds']} s (celery: beat): {what}"

    rows: list[tuple[str, str, str, Target | None, int]] = [
        ("lateness p50, ms", "p50_ms", "ms", None, 2),
        ("lateness p99, ms", "p99_ms", "ms", AtMost(5), 2),
        ("lateness max, ms", "max_ms", "ms", None, 2),
        ("drift first -> last firing, ms", "drift_ms", "ms", None, 2),
        ("started early", "early", "firings", Exactly(0), 0),
        ("fire times missing", "missing", "firings", Exactly(0), 0),
    ]
    return [
        Measure(
            "beat_lateness",
            name(label),
            unit,
            _at("ours", key),
            _at("beat", key),
            digits=digits,
            ratio=unit == "ms",
            target=target,
        )
        for label, key, unit, target, digits in rows
    ]


def _beat_many() -> list[Measure]:
    """10,000 schedules every 60 s, spread over the minute: the scheduler
    process's RSS (our gateway, beat) and the lateness over one minute."""

    def name(what: str) -> Callable[[Section], str]:
        return lambda t: f"{t['schedules']} schedules every 60 s (celery: beat): {what}"

    def late(key: str) -> tuple[Getter, Getter]:
        return _at("ours", "lateness", key), _at("beat", "lateness", key)

    return [
        Measure(
            "beat_many",
            name("scheduler RSS max, MB (ours: gateway)"),
            "MB",
            _at("ours", "gateway_rss_mb_max"),
            _at("beat", "beat_rss_mb_max"),
            target=AtMost(300),
        ),
        Measure(
            "beat_many",
            name("scheduler CPU share over the minute"),
            "",
            _at("ours", "gateway_cpu_share"),
            _at("beat", "beat_cpu_share"),
            digits=2,
        ),
        *(
            Measure("beat_many", name(label), "ms", *late(key), digits=2, target=target)
            for label, key, target in (
                ("lateness p50, ms", "p50_ms", None),
                ("lateness p99, ms", "p99_ms", AtMost(10)),
                ("lateness max, ms", "max_ms", None),
            )
        ),
        Measure(
            "beat_many",
            name("started early"),
            "firings",
            *late("early"),
            ratio=False,
            target=Exactly(0),
        ),
        Measure(
            "beat_many",
            name("fire times missing in the minute"),
            "firings",
            *late("missing"),
            ratio=False,
            target=Exactly(0),
        ),
        Measure(
            "beat_many",
            name("making them, s (ours: POST /schedules x8 clients; beat: ORM bulk_create)"),
            "s",
            _at("ours", "creation", "seconds"),
            _at("beat", "seed_seconds"),
            digits=2,
            ratio=False,
        ),
    ]


def _beat_restart() -> list[Measure]:
    """The scheduler SIGKILLed and started again with 10,000 schedules:
    from the new process's start until a firing starts on a worker."""

    def name(what: str) -> Callable[[Section], str]:
        return lambda t: f"restart with {t['schedules']} schedules (celery: beat): {what}"

    def most(values: Any) -> Any:
        nums = [v for v in values or [] if v is not None]
        return max(nums) if nums else None

    return [
        Measure(
            "beat_restart",
            name("firings resume, s"),
            "s",
            _at("ours", "resume_s"),
            _at("beat", "resume_s"),
            digits=2,
            target=AtMost(2),
        ),
        Measure(
            "beat_restart",
            name("gateway serving HTTP, s"),
            "s",
            _at("ours", "http_printed_s"),
            digits=2,
        ),
        Measure(
            "beat_restart",
            name("last worker rejoined, s"),
            "s",
            lambda t: most(_at("ours", "workers_rejoined_s")(t)),
            digits=2,
        ),
        Measure(
            "beat_restart",
            name("fire times firing twice after it"),
            "",
            _at("ours", "fire_times_with_two_firings"),
            _at("beat", "schedules_fired_twice_within_half_an_interval"),
            ratio=False,
            target=Exactly(0),
        ),
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
    *_one_run_tasks(),
    *_batch(),
    *_roundtrip_wait(),
    *_big_task_running(),
    *_beat_lateness(),
    *_beat_many(),
    *_beat_restart(),
)


def _shown(results: dict[str, Any], measures: tuple[Measure, ...]) -> list[tuple[Measure, Section]]:
    out = []
    for m in measures:
        section = results.get(m.section)
        if section and m.when(section):
            out.append((m, section))
    return out


def has_dramatiq(results: dict[str, Any], measures: tuple[Measure, ...] = MEASURES) -> bool:
    """Whether any row has a Dramatiq figure (then the table has its columns)."""
    return any(
        v is not None
        for m, section in _shown(results, measures)
        for v in m.dramatiq_figures(section)
    )


def rows(results: dict[str, Any], measures: tuple[Measure, ...] = MEASURES) -> list[Row]:
    """The table's rows, in the order declared, for the sections measured."""
    with_dramatiq = has_dramatiq(results, measures)
    return [m.row(section, with_dramatiq=with_dramatiq) for m, section in _shown(results, measures)]


def table(results: dict[str, Any], measures: tuple[Measure, ...] = MEASURES) -> str:
    head = HEAD_ALL if has_dramatiq(results, measures) else HEAD
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(row) + " |" for row in rows(results, measures)]
    return "\n".join(lines)


def _dramatiq_line(doc: dict[str, Any]) -> str:
    if not has_dramatiq(doc["results"]):
        return "Ratio = ours / celery. "
    version = doc["environment"]["versions"].get("dramatiq", "?")
    return (
        f"Dramatiq {version}: `--processes 2 --threads 1` (2x1, db 10) and `--processes 2 "
        "--threads 8` (2x8, db 11), Redis broker and Results middleware.\n"
        "Ratio = ours / the fastest peer configuration of the row (named). "
    )


def render_markdown(doc: dict[str, Any], tab: str) -> str:
    env = doc["environment"]
    peers = "Celery 5 + Redis" + (" and Dramatiq 2 + Redis" if has_dramatiq(doc["results"]) else "")
    return f"""# Benchmark: ww-scheduler vs {peers}

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
{_dramatiq_line(doc)}How each number is taken: `bench/README.md`.

{tab}

<details><summary>The whole JSON document</summary>

```json
{json.dumps(doc, indent=2, default=str)}
```

</details>
"""
