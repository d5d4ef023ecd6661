"""Where a run may go (SPEC "Workers: labels, queues, priority"), as plain
functions: whether a worker accepts a run's route, a task's route, why a
run waits, the order of due runs, the bounds on what a worker may offer
and the runworker options that stay within them."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cluster_app import offers
from cluster_app.offers import Refused, Routing, judge_routing
from tasks_app import policy
from tasks_app.policy import DEFAULT_ROUTE, Route, accepts, ready_order, route_of, waiting_for
from workers.routing_options import BadRoutingOption, parse_labels, parse_queues

names = st.text("abcdefgh", min_size=1, max_size=3)
label_maps = st.dictionaries(names, st.text("xyz", max_size=2), max_size=4)
queue_sets = st.frozensets(names, max_size=3)


@given(queue_sets, label_maps, names, label_maps)
def test_a_worker_accepts_exactly_runs_of_its_queues_whose_labels_it_has(
    queues: frozenset[str], labels: dict[str, str], queue: str, constraints: dict[str, str]
) -> None:
    route = route_of(queue, constraints)
    expected = queue in queues and all(labels.get(k) == v for k, v in constraints.items())
    assert accepts(queues=queues, labels=labels, route=route) is expected


@given(queue_sets, label_maps, names, label_maps, label_maps)
def test_more_labels_never_take_a_run_away(
    queues: frozenset[str],
    labels: dict[str, str],
    queue: str,
    constraints: dict[str, str],
    extra: dict[str, str],
) -> None:
    route = route_of(queue, constraints)
    if accepts(queues=queues, labels=labels, route=route):
        more = {**extra, **labels}
        assert accepts(queues=queues | {"other"}, labels=more, route=route)


@given(names, label_maps)
def test_a_route_does_not_depend_on_the_order_of_its_constraints(
    queue: str, constraints: dict[str, str]
) -> None:
    backwards = dict(reversed(list(constraints.items())))
    assert route_of(queue, constraints) == route_of(queue, backwards)
    assert hash(route_of(queue, constraints)) == hash(route_of(queue, backwards))


def test_the_seed_forms_route_is_one_shared_constant() -> None:
    assert route_of("default", {}) is DEFAULT_ROUTE
    assert route_of("default", None) is DEFAULT_ROUTE
    assert route_of("gpu", {}) == Route(queue="gpu")
    assert route_of("default", {"b": "2", "a": "1"}).constraints == (("a", "1"), ("b", "2"))
    # A worker started without options serves the default queue, no labels.
    assert accepts(queues={"default"}, labels={}, route=DEFAULT_ROUTE)
    assert not accepts(queues={"default"}, labels={}, route=route_of("default", {"gpu": "1"}))


def test_waiting_for_says_why_and_nothing_when_a_worker_accepts() -> None:
    gpu = route_of("ml", {"gpu": "a100"})
    assert waiting_for(gpu, []) == "no worker is connected"
    reason = waiting_for(gpu, [({"default"}, {}), ({"ml"}, {"gpu": "t4"})])
    assert reason is not None
    assert "queue 'ml'" in reason and "gpu=a100" in reason
    assert waiting_for(gpu, [({"default"}, {}), ({"ml", "default"}, {"gpu": "a100"})]) is None


T0 = datetime(2026, 12, 3, tzinfo=UTC)


@given(
    st.lists(
        st.tuples(st.integers(-100, 100), st.integers(0, 50), st.booleans()),
        min_size=1,
        max_size=50,
    )
)
def test_due_runs_go_by_priority_then_due_time_then_retries_then_arrival(
    runs: list[tuple[int, int, bool]],
) -> None:
    keys = [
        ready_order(priority, T0 + timedelta(seconds=s), retry, n)
        for n, (priority, s, retry) in enumerate(runs)
    ]
    order = sorted(range(len(runs)), key=keys.__getitem__)
    for a, b in itertools.pairwise(order):
        pa, sa, ra = runs[a]
        pb, sb, rb = runs[b]
        assert pa >= pb
        if pa == pb:
            assert sa <= sb
            if sa == sb:
                assert (not ra, a) < (not rb, b)


# -- what a worker may offer ----------------------------------------------------


def test_an_offer_within_the_bounds_is_taken_and_no_queue_means_default() -> None:
    routing = judge_routing(labels=[("gpu", "a100"), ("zone", "eu")], queues=[])
    assert routing == Routing(labels={"gpu": "a100", "zone": "eu"}, queues=frozenset({"default"}))
    routing = judge_routing(labels=[], queues=["ml", "ml", "batch"])
    assert isinstance(routing, Routing) and routing.queues == {"ml", "batch"}


class _Huge:
    """A list of 10**6 labels whose items must never be read."""

    def __len__(self) -> int:
        return 10**6

    def __getitem__(self, index: int) -> tuple[str, str]:
        raise AssertionError("an item of an oversized list was read")

    def __iter__(self):  # type: ignore[no-untyped-def]
        raise AssertionError("an oversized list was read")


@pytest.mark.parametrize(
    ("labels", "queues", "problem"),
    [
        (_Huge(), [], "1000000 labels"),
        ([], _Huge(), "1000000 queues"),
        ([("", "x")], [], "label name"),
        ([("k" * 101, "x")], [], "label name"),
        ([("k", "v" * 201)], [], "value over"),
        ([], [""], "queue name"),
        ([], ["q" * 101], "queue name"),
        ([("é" * 51, "x")], [], "label name"),  # 102 bytes of UTF-8
    ],
)
def test_an_offer_over_the_bounds_is_refused_without_reading_it_all(
    labels: object, queues: object, problem: str
) -> None:
    verdict = judge_routing(labels=labels, queues=queues)  # type: ignore[arg-type]
    assert isinstance(verdict, Refused)
    assert problem in verdict.reason


def test_the_bounds_allow_what_runworker_allows() -> None:
    many = ",".join(f"k{i}=v" for i in range(offers.MAX_LABELS))
    assert len(parse_labels(many)) == offers.MAX_LABELS
    with pytest.raises(BadRoutingOption, match="labels"):
        parse_labels(many + ",extra=1")
    queues = ",".join(f"q{i}" for i in range(offers.MAX_QUEUES + 1))
    with pytest.raises(BadRoutingOption, match="queues"):
        parse_queues(queues)


def test_runworker_options() -> None:
    assert parse_labels("") == {}
    assert parse_labels("gpu=a100, zone = eu ,x=a=b") == {"gpu": "a100", "zone": "eu", "x": "a=b"}
    assert parse_labels("empty=") == {"empty": ""}
    assert parse_labels("a=1,,b=2,") == {"a": "1", "b": "2"}  # an empty item is nothing
    for bad in ("gpu", "=x", "a=1,b"):
        with pytest.raises(BadRoutingOption, match="key=value"):
            parse_labels(bad)
    assert parse_queues("") == ["default"]
    assert parse_queues("default") == ["default"]
    assert parse_queues("ml, batch,ml") == ["ml", "batch"]


def test_route_describes_itself() -> None:
    assert DEFAULT_ROUTE.describe() == "a worker serving queue 'default'"
    assert policy.route_of("ml", {"gpu": "1"}).describe() == (
        "a worker serving queue 'ml' with labels gpu=1"
    )


def _info(labels: list[tuple[str, str]], queues: list[str]) -> object:
    import schema

    info = schema.worker.WorkerInfo.new_message(peer="12D3KooWx", concurrency=2)
    wire = info.init("labels", len(labels))
    for i, (key, value) in enumerate(labels):
        wire[i].key, wire[i].value = key, value
    wire_queues = info.init("queues", len(queues))
    for i, queue in enumerate(queues):
        wire_queues[i] = queue
    return info.as_reader()


def test_an_offer_is_read_off_the_wire_defensively() -> None:
    from cluster_app.worker_link import read_routing

    routing = read_routing(_info([("gpu", "a100")], ["ml", "default"]))
    assert routing == Routing(labels={"gpu": "a100"}, queues=frozenset({"ml", "default"}))
    # A worker of before these fields offers neither: the default queue, no labels.
    assert read_routing(_info([], [])) == Routing(labels={}, queues=frozenset({"default"}))
    too_many = read_routing(_info([(f"k{i}", "v") for i in range(65)], []))
    assert isinstance(too_many, Refused) and "65 labels" in too_many.reason

    class Broken:
        queues: list[str] = []

        @property
        def labels(self) -> object:
            raise UnicodeDecodeError("utf-8", b"\xff", 0, 1, "invalid start byte")

    broken = read_routing(Broken())
    assert isinstance(broken, Refused) and "unreadable" in broken.reason
