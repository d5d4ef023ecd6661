"""Least-in-flight choice of a worker."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from tasks_app.balance import Load, least_in_flight


def load(key: int, in_flight: int, concurrency: int = 2, dispatched: int = 0) -> Load:
    return Load(
        key=key, in_flight=in_flight, concurrency=concurrency, dispatched=dispatched, joined=key
    )


def test_fewest_in_flight_wins() -> None:
    assert least_in_flight([load(1, 1), load(2, 0), load(3, 1)]) == load(2, 0)


def test_full_workers_are_skipped() -> None:
    chosen = least_in_flight([load(1, 1, concurrency=1), load(2, 1, concurrency=4)])
    assert chosen is not None and chosen.key == 2


def test_none_when_every_worker_is_full_or_there_is_none() -> None:
    assert least_in_flight([load(1, 2, concurrency=2), load(2, 1, concurrency=1)]) is None
    assert least_in_flight([]) is None


def test_ties_go_to_the_worker_given_fewest_runs_then_the_oldest() -> None:
    assert least_in_flight([load(1, 0, dispatched=5), load(2, 0, dispatched=4)]).key == 2
    assert least_in_flight([load(2, 0, dispatched=4), load(1, 0, dispatched=4)]).key == 1


@given(
    st.lists(
        st.tuples(st.integers(0, 8), st.integers(1, 8), st.integers(0, 100)),
        max_size=20,
    )
)
def test_choice_is_a_free_worker_with_minimal_in_flight(rows: list[tuple[int, int, int]]) -> None:
    loads = [
        Load(key=i, in_flight=f, concurrency=c, dispatched=d, joined=i)
        for i, (f, c, d) in enumerate(rows)
    ]
    chosen = least_in_flight(loads)
    free = [x for x in loads if x.in_flight < x.concurrency]
    if not free:
        assert chosen is None
    else:
        assert chosen in free
        assert chosen.in_flight == min(x.in_flight for x in free)


def test_pool_queue_lets_a_worker_hold_short_runs_beyond_its_slots() -> None:
    from tasks_app.pool import WorkerPool

    pool = WorkerPool()
    pool.add(peer_id="w", address="a", concurrency=1, link=object(), connection=1)
    assert pool.try_acquire() is not None
    assert pool.try_acquire() is None  # a long (or unknown) run needs a free slot
    held = [pool.try_acquire(queue=2) for _ in range(3)]
    assert [w is not None for w in held] == [True, True, False]  # 1 slot + 2 queued


def test_pool_takes_more_places_for_a_batch_within_capacity() -> None:
    from tasks_app.pool import WorkerPool

    pool = WorkerPool()
    worker = pool.add(peer_id="w", address="a", concurrency=2, link=object(), connection=1)
    assert pool.try_acquire(queue=3) is worker
    assert pool.take_more(worker, queue=3, most=100) == 7  # 2 slots x (1 + 3) in all
    assert pool.try_acquire(queue=3) is None
    pool.release(worker, 5)
    assert worker.in_flight == 3
    assert pool.take_more(worker, queue=0, most=5) == 0  # no free slot without a queue


def test_pool_spreads_runs_before_queueing_on_one_worker() -> None:
    from tasks_app.pool import WorkerPool

    pool = WorkerPool()
    for peer in ("a", "b"):
        pool.add(peer_id=peer, address=peer, concurrency=1, link=object(), connection=1)
    picks = [pool.try_acquire(queue=4).peer_id for _ in range(4)]  # type: ignore[union-attr]
    assert sorted(picks) == ["a", "a", "b", "b"]
