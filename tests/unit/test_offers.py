"""Whether a worker's offer is taken, and with how many slots."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from cluster_app.offers import Admitted, Refused, judge_offer

PEER = "12D3KooWPeer"


def _judge(**overrides: object) -> Admitted | Refused:
    fields: dict[str, object] = {
        "says": PEER,
        "proved": PEER,
        "claimed_concurrency": 2,
        "max_concurrency": 256,
        "faults": 0,
        "max_faults": 3,
    }
    fields.update(overrides)
    return judge_offer(**fields)  # type: ignore[arg-type]  # the test's own keywords


def test_an_honest_offer_is_taken_as_claimed() -> None:
    assert _judge() == Admitted(concurrency=2)


def test_a_worker_claiming_another_peer_is_refused() -> None:
    verdict = _judge(says="12D3KooWOther")
    assert isinstance(verdict, Refused) and "but proved" in verdict.reason


def test_a_worker_past_its_faults_is_refused() -> None:
    verdict = _judge(faults=3)
    assert isinstance(verdict, Refused) and "malformed outcomes 3 times" in verdict.reason
    assert isinstance(_judge(faults=2), Admitted)


@given(st.integers(min_value=0, max_value=2**32 - 1), st.integers(min_value=1, max_value=4096))
def test_claimed_concurrency_is_capped_and_at_least_one(claimed: int, cap: int) -> None:
    verdict = _judge(claimed_concurrency=claimed, max_concurrency=cap)
    assert isinstance(verdict, Admitted)
    assert 1 <= verdict.concurrency <= cap
    assert verdict.concurrency == min(max(claimed, 1), cap)
    assert (verdict.capped_from is not None) == (verdict.concurrency != claimed)
