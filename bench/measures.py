"""Statistics of the bench: percentiles of samples, medians of repetitions,
and the summaries built from them (lateness, merged round-trip rounds, CPU
per run). Pure functions over numbers and dicts: no processes, no clock."""

from __future__ import annotations

import statistics
from collections.abc import Iterable, Sequence
from typing import Any


def pct(values: Sequence[float], p: float) -> float | None:
    """The p-th percentile (0..100) by linear interpolation between the
    closest ranks (numpy's default); None for no values."""
    if not values:
        return None
    data = sorted(values)
    k = (len(data) - 1) * p / 100
    lo, hi = int(k), min(int(k) + 1, len(data) - 1)
    return data[lo] + (data[hi] - data[lo]) * (k - lo)


def med(values: Iterable[float | None]) -> float | None:
    """Median of the values that were measured (None: that repetition had
    no figure); None when none were."""
    vals = [v for v in values if v is not None]
    return statistics.median(vals) if vals else None


def div(a: float | None, b: float | None) -> float | None:
    """a / b, or None when either is missing or b is 0."""
    if a is None or b is None or b == 0:
        return None
    return a / b


def lateness_stats(lates_ms: Sequence[float]) -> dict[str, Any]:
    """One burst's lateness (start - due, ms): percentiles, extremes, and
    how many started early (negative lateness)."""
    return {
        "p50_ms": pct(lates_ms, 50),
        "p99_ms": pct(lates_ms, 99),
        "max_ms": max(lates_ms) if lates_ms else None,
        "early": sum(1 for x in lates_ms if x < 0),
        "min_ms": min(lates_ms) if lates_ms else None,
        "n": len(lates_ms),
    }


def lateness_medians(reps: list[dict[str, Any]]) -> dict[str, Any]:
    """Medians of the repetitions' lateness figures (one burst's p99 is its
    99th run, at the mercy of one slow moment of the machine); runs started
    early and the minimum over all of them."""
    return {
        **{key: med([r.get(key) for r in reps]) for key in ("p50_ms", "p99_ms", "max_ms")},
        "early": sum(r.get("early") or 0 for r in reps),
        "min_ms": min((r["min_ms"] for r in reps if r.get("min_ms") is not None), default=None),
        "n": sum(r.get("n") or 0 for r in reps),
        "repetitions": reps,
    }


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
        elif isinstance(value, int | float) and key not in ("n", "errors"):
            out[key] = med([r[key] for r in rounds])
    out.update(
        p50_ms=pct(samples, 50),
        p99_ms=pct(samples, 99),
        n=sum(r["n"] for r in rounds),
        errors=sum(r.get("errors", 0) for r in rounds),
    )
    del out["samples_ms"]
    return out


def cpu_medians(reps: list[dict[str, Any]], parts: tuple[str, ...]) -> dict[str, Any]:
    """Median CPU ms per run of each process kind (and of the bench client)
    over the repetitions; system_total sums the system's own parts."""
    out = {p: med([r.get(f"{p}_cpu_ms_per_run") for r in reps]) for p in (*parts, "client")}
    out["system_total"] = sum(out[p] or 0 for p in parts)
    return out
