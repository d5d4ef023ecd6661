"""The bench's report (bench/report.py): targets judged as declared, figures
formatted as the table shows them, and the table built from the declared
measures."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from bench.report import (
    BEST,
    HEAD_ALL,
    MEASURES,
    AllOf,
    AtLeast,
    AtMost,
    Exactly,
    Measure,
    PeerTimesAtLeast,
    PeerTimesAtMost,
    cell,
    fastest,
    has_dramatiq,
    rows,
    table,
)

RESULTS_MD = Path(__file__).resolve().parents[2] / "bench" / "RESULTS.md"
figures = st.floats(min_value=0, max_value=1e6, allow_nan=False)
positive = st.floats(min_value=1e-3, max_value=1e6, allow_nan=False)


@given(ours=figures, limit=figures)
def test_at_most_is_met_exactly_when_ours_is_not_above(ours: float, limit: float) -> None:
    assert AtMost(limit).judge(ours, {}) is (ours <= limit)
    assert AtLeast(limit).judge(ours, {}) is (ours >= limit)


def test_no_figure_is_cannot_say_unless_declared_a_failure() -> None:
    assert AtMost(5).judge(None, {}) is None
    assert AtMost(1, missing=False).judge(None, {}) is False
    assert AtLeast(1.9).judge(None, {}) is None
    assert Exactly(0).judge(None, {}) is False


@given(ours=figures, peer=positive, factor=st.sampled_from([0.5, 1.0, 2.0]))
def test_peer_targets_compare_ours_to_a_multiple_of_the_peer(
    ours: float, peer: float, factor: float
) -> None:
    assert PeerTimesAtMost(factor).judge(ours, {"celery": peer}) is (ours <= factor * peer)
    assert PeerTimesAtLeast(factor).judge(ours, {"celery": peer}) is (ours / peer >= factor)


def test_peer_targets_cannot_say_without_both_figures() -> None:
    assert PeerTimesAtMost().judge(1.0, {"celery": None}) is None
    assert PeerTimesAtMost().judge(None, {"celery": 1.0}) is None
    assert PeerTimesAtLeast(2).judge(3.0, {"celery": 0}) is None
    assert PeerTimesAtLeast(1, BEST).judge(3.0, {}) is None


def test_target_texts() -> None:
    assert AtMost(5.0).text("ms") == "<= 5 ms"
    assert AtMost(1.0, missing=False).text("s") == "<= 1 s"
    assert AtMost(1.3).text("x") == "<= 1.3x"
    assert AtMost(1.5).text("") == "<= 1.5"
    assert AtLeast(1.9).text("x") == ">= 1.9x"
    assert Exactly(0).text("runs") == "0"
    assert PeerTimesAtMost(1).text("ms") == "<= celery"
    assert PeerTimesAtLeast(2).text("runs/s") == ">= 2x celery"


def test_cells() -> None:
    assert cell(None) == "-"
    assert cell(float("inf"), 2) == "inf"
    assert cell(2.0 / 3, 2) == "0.67"
    assert cell(1.234, 2, "x") == "1.23x"
    assert cell(3, 2) == "3"  # counts are shown whole
    assert cell(1.5, 1, "ms") == "1.5"  # the unit is in the measure's name


@given(value=st.floats(allow_nan=False, allow_infinity=False), digits=st.integers(0, 4))
def test_a_cell_shows_the_figure_to_its_digits(value: float, digits: int) -> None:
    text = cell(value, digits)
    assert math.isclose(float(text), value, abs_tol=10**-digits, rel_tol=1e-9)
    assert len(text.partition(".")[2]) == digits


def test_a_row_is_name_ours_peer_ratio_target_verdict() -> None:
    m = Measure(
        "s",
        lambda t: f"thing at N={t['n']}, ms",
        "ms",
        lambda t: t["ours"],
        lambda t: t["peer"],
        digits=2,
        target=PeerTimesAtMost(1),
    )
    assert m.row({"n": 3, "ours": 1.0, "peer": 4.0}) == (
        "thing at N=3, ms",
        "1.00",
        "4.00",
        "0.25x",
        "<= celery",
        "yes",
    )
    assert m.row({"n": 3, "ours": 5.0, "peer": 4.0})[5] == "NO"
    assert m.row({"n": 3, "ours": None, "peer": 4.0})[1:] == ("-", "4.00", "-", "<= celery", "-")


def test_several_peer_figures_share_the_cell_and_have_no_ratio() -> None:
    m = Measure(
        "s",
        "lost",
        "runs",
        lambda t: t["a"],
        (lambda t: t["b"], lambda t: t["c"]),
        target=Exactly(0),
    )
    assert m.row({"a": 0, "b": 1, "c": None}) == ("lost", "0", "1 / -", "-", "0", "yes")


def test_only_measured_sections_have_rows() -> None:
    scale = {
        "stored_tasks": 10,
        "list_first_page": {"p50_ms": 70.0},
        "gateway_rss_mb": 150.0,
        "fairness": {"ratio": 1.2, "workers_in_pool": 100},
    }
    results = {"scale": scale}
    assert rows(results) == [
        ("GET /tasks first page p50, ms (10 tasks)", "70.0", "-", "-", "<= 50 ms", "NO"),
        ("gateway RSS, MB (after 100 workers + runs)", "150.0", "-", "-", "<= 200 MB", "yes"),
        ("fairness max/min runs per worker (100 conns)", "1.20", "-", "-", "<= 1.5", "yes"),
    ]
    assert rows({}) == []


def test_a_failed_side_shows_no_figure_and_no_verdict() -> None:
    results = {
        "roundtrip": {
            "ours": {"p50_ms": 2.0, "p99_ms": 5.0},
            "ours_websocket": {"error": "ConnectionError: x", "p50_ms": None, "p99_ms": None},
            "celery": {"p50_ms": 2.5, "p99_ms": 4.0},
        }
    }
    assert rows(results)[2] == (
        "round trip p50, ms (ours: result via websocket)",
        "-",
        "2.50",
        "-",
        "<= celery",
        "-",
    )


def test_every_measure_names_a_section_the_bench_writes() -> None:
    written = {
        "throughput", "roundtrip", "punctuality", "loss", "scaling", "wasm", "scale", "big_task",
        "one_run_tasks", "batch", "roundtrip_wait", "big_task_running",
        "beat_lateness", "beat_many", "beat_restart",
    }  # fmt: skip
    assert {m.section for m in MEASURES} == written


def test_the_beat_rows_judge_ours_and_show_beat_in_the_celery_column() -> None:
    """Issue 18's sections: beat's figures in the Celery column, ours
    judged against the issue's targets (p99 5 ms and 10 ms, RSS 300 MB,
    resumed within 2 s, none early or missing)."""
    late = {"p50_ms": 0.1, "p99_ms": 4.0, "max_ms": 6.0, "early": 0, "missing": 0, "drift_ms": 0.0}
    beat_late = {**late, "p99_ms": 90.0, "drift_ms": 80.0, "missing": 1}
    results = {
        "beat_lateness": {"seconds": 60, "ours": late, "beat": beat_late},
        "beat_many": {
            "schedules": 10000,
            "ours": {
                "gateway_rss_mb_max": 320.0,
                "gateway_cpu_share": 0.5,
                "lateness": {**late, "p99_ms": 12.0},
                "creation": {"seconds": 90.0},
            },
            "beat": {"beat_rss_mb_max": 130.0, "beat_cpu_share": 1.0, "lateness": beat_late},
        },
        "beat_restart": {
            "schedules": 10000,
            "ours": {
                "resume_s": 1.5,
                "http_printed_s": 1.2,
                "workers_rejoined_s": [1.4, None],
                "fire_times_with_two_firings": 0,
            },
            "beat": {"resume_s": 1.0, "schedules_fired_twice_within_half_an_interval": 7},
        },
    }
    by_name = {row[0]: row for row in rows(results)}
    p99 = by_name["1 s schedule over 60 s (celery: beat): lateness p99, ms"]
    assert p99[1:] == ("4.00", "90.00", "0.04x", "<= 5 ms", "yes")
    assert by_name["1 s schedule over 60 s (celery: beat): fire times missing"][2:] == (
        "1", "-", "0", "yes"
    )  # fmt: skip
    many = "10000 schedules every 60 s (celery: beat): "
    assert by_name[many + "scheduler RSS max, MB (ours: gateway)"][-2:] == ("<= 300 MB", "NO")
    assert by_name[many + "lateness p99, ms"][-2:] == ("<= 10 ms", "NO")
    restart = "restart with 10000 schedules (celery: beat): "
    assert by_name[restart + "firings resume, s"][1:] == ("1.50", "1.00", "1.50x", "<= 2 s", "yes")
    assert by_name[restart + "last worker rejoined, s"][1] == "1.40"
    assert by_name[restart + "fire times firing twice after it"][1:3] == ("0", "7")


def _results_md() -> tuple[dict[str, Any], str]:
    text = RESULTS_MD.read_text()
    doc = json.loads(text.split("```json\n", 1)[1].split("\n```", 1)[0])
    return doc, "\n".join(line for line in text.splitlines() if line.startswith("|"))


def test_the_committed_results_give_the_committed_table() -> None:
    """bench/RESULTS.md holds a full run's JSON and the table printed from
    it: the declared measures must print that table from that JSON, row for
    row (the rows the bench printed before its table was declared)."""
    doc, committed = _results_md()
    assert table(doc["results"]).splitlines() == committed.splitlines()


def test_the_fastest_peer_is_the_best_figure_in_the_measures_direction() -> None:
    peers = {"celery": 600.0, "dramatiq_2x1": 500.0, "dramatiq_2x8": 2200.0}
    assert fastest(peers, higher_is_better=True) == ("dramatiq_2x8", 2200.0)
    assert fastest(peers, higher_is_better=False) == ("dramatiq_2x1", 500.0)
    assert fastest({"celery": None, "dramatiq_2x1": 3.0}, higher_is_better=False) == (
        "dramatiq_2x1",
        3.0,
    )
    assert fastest({"celery": None}, higher_is_better=True) is None


@given(
    ours=figures,
    peers=st.dictionaries(st.sampled_from(["celery", "dramatiq_2x1", "dramatiq_2x8"]), positive),
)
def test_a_target_against_the_fastest_peer_is_against_every_peer(
    ours: float, peers: dict[str, float]
) -> None:
    at_least = PeerTimesAtLeast(1, BEST).judge(ours, peers)
    at_most = PeerTimesAtMost(1, BEST).judge(ours, peers)
    if not peers:
        assert at_least is None and at_most is None
    else:
        assert at_least is all(ours >= v for v in peers.values())
        assert at_most is all(ours <= v for v in peers.values())


def test_all_of_is_met_only_when_every_target_is() -> None:
    both = AllOf((AtLeast(10_000), PeerTimesAtLeast(3, BEST)))
    assert both.text("runs/s") == ">= 10000 runs/s and >= 3x fastest peer"
    assert both.judge(12_000.0, {"celery": 600.0, "dramatiq_2x8": 3000.0}) is True
    assert both.judge(12_000.0, {"celery": 600.0, "dramatiq_2x8": 5000.0}) is False
    assert both.judge(9_000.0, {"celery": 600.0}) is False
    assert both.judge(12_000.0, {}) is None
    assert AllOf((PeerTimesAtLeast(1, BEST), PeerTimesAtLeast(2))).text("runs/s") == (
        ">= fastest peer and >= 2x celery"
    )


def test_with_dramatiq_a_row_has_its_columns_and_the_ratio_names_the_fastest_peer() -> None:
    m = Measure(
        "s",
        "runs/s",
        "runs/s",
        lambda t: t["ours"],
        lambda t: t["celery"],
        dramatiq=(lambda t: t["d1"], lambda t: t["d8"]),
        higher_is_better=True,
        target=PeerTimesAtLeast(1, BEST),
    )
    section = {"ours": 3000.0, "celery": 600.0, "d1": 500.0, "d8": 2000.0}
    assert m.row(section, with_dramatiq=True) == (
        "runs/s",
        "3000.0",
        "600.0",
        "500.0",
        "2000.0",
        "1.50x (dramatiq 2x8)",
        ">= fastest peer",
        "yes",
    )
    # Without the Dramatiq columns: the ratio against Celery, as before.
    assert m.row(section) == ("runs/s", "3000.0", "600.0", "5.00x", ">= fastest peer", "yes")


def test_ours_not_available_is_shown_and_not_judged() -> None:
    m = Measure(
        "s",
        "p50",
        "ms",
        lambda t: t["ours"].get("p50_ms"),
        lambda t: t["celery"],
        dramatiq=(lambda t: None, lambda t: None),
        target=PeerTimesAtMost(1, BEST),
        available=lambda t: t["ours"].get("available") is not False,
    )
    section = {"ours": {"available": False, "error": "not available: 404"}, "celery": 2.5}
    assert m.row(section, with_dramatiq=True) == (
        "p50",
        "n/a",
        "2.5",
        "-",
        "-",
        "-",
        "<= fastest peer",
        "-",
    )


def test_the_table_has_dramatiq_columns_only_when_a_row_has_a_dramatiq_figure() -> None:
    roundtrip = {
        "ours": {"p50_ms": 2.0, "p99_ms": 5.0},
        "celery": {"p50_ms": 2.5, "p99_ms": 4.0},
    }
    assert not has_dramatiq({"roundtrip": roundtrip})
    assert table({"roundtrip": roundtrip}).splitlines()[0].count("|") == 7
    roundtrip["dramatiq_2x8"] = {"p50_ms": 4.0, "p99_ms": 9.0}
    assert has_dramatiq({"roundtrip": roundtrip})
    lines = table({"roundtrip": roundtrip}).splitlines()
    assert lines[0] == "| " + " | ".join(HEAD_ALL) + " |"
    assert (
        lines[2]
        == "| round trip p50, ms | 2.00 | 2.50 | - | 4.00 | 0.80x (celery) | <= celery | yes |"
    )


def test_the_new_shapes_rows_and_their_targets() -> None:
    results = {
        "one_run_tasks": {
            "runs": 2000,
            "ours": {"runs_per_s": 1500.0},
            "celery": {"runs_per_s": 700.0},
            "dramatiq_2x1": {"runs_per_s": 500.0},
            "dramatiq_2x8": {"runs_per_s": 2200.0},
        },
        "batch": {
            "runs": 10000,
            "ours": {"available": False, "error": "not available: POST /tasks/batch: 405"},
            "celery": {"runs_per_s": 600.0},
            "dramatiq_2x1": {"runs_per_s": 500.0},
            "dramatiq_2x8": {"runs_per_s": 2500.0},
        },
    }
    one, batch = rows(results)
    assert one[0] == "one-run tasks, runs/s (N=2000 requests; ours JSON by hash)"
    assert one[5:] == ("0.68x (dramatiq 2x8)", ">= fastest peer and >= 2x celery", "NO")
    assert batch[1] == "n/a"
    assert batch[6:] == (">= 10000 runs/s and >= 3x fastest peer", "-")
