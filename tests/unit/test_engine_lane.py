"""The submit lane (engine/lane.py): bounded, first come first served, and a long wait said."""

from __future__ import annotations

import pytest
from tests.unit.clock import Clock

from dli_operator.engine.lane import NOTICE_AFTER_SECONDS, RENOTICE_SECONDS, SubmitLane


@pytest.fixture
def clock() -> Clock:
    return Clock()


def lane(clock: Clock, *, cap: int = 1, rate: float = 10.0, slowest: float = 10.0) -> SubmitLane:
    return SubmitLane(cap, lambda: rate, slowest, clock=clock)


def test_a_full_lane_parks_in_order_and_hands_each_freed_slot_to_the_longest_parked(clock) -> None:
    submits = lane(clock, cap=2)
    assert submits.enter("a")
    assert submits.enter("b")
    assert not submits.enter("c")
    assert not submits.enter("d")
    assert len(submits) == 2
    assert submits.leave() == ["c"]
    assert not submits.enter("late")  # the slot is held for c, not taken by a newcomer
    assert submits.enter("c")
    assert submits.leave() == ["d"]


def test_a_parked_key_that_comes_back_keeps_its_place(clock) -> None:
    submits = lane(clock)
    assert submits.enter("a")
    for key in ("b", "c", "b", "b"):  # b is due again (a watch event) while parked
        assert not submits.enter(key)
    assert submits.leave() == ["b"]


@pytest.mark.parametrize("held", [True, False], ids=["held a slot", "parked"])
def test_a_released_key_gives_up_its_slot_or_its_place(clock, held: bool) -> None:
    submits = lane(clock)
    assert submits.enter("a")
    assert not submits.enter("b")
    assert not submits.enter("c")
    if held:
        assert submits.leave() == ["b"]
        assert submits.release("b") == ["c"]  # b was deleted before its step started
    else:
        assert submits.release("b") == []
        assert submits.leave() == ["c"]
    assert len(submits) == 0


def test_a_wait_the_configured_rate_explains_is_not_announced(clock) -> None:
    submits = lane(clock, cap=1, rate=10.0)
    assert submits.enter("busy")
    for n in range(1000):
        submits.enter(f"k{n}")
    clock.now += 60  # k0..k300 are late by the 2x rule; the rest are on time
    late = [wait.key for wait in submits.overdue()]
    assert late == [f"k{n}" for n in range(301)]


def test_an_announced_wait_counts_what_is_ahead_at_the_lanes_recent_pace(clock) -> None:
    submits = lane(clock, cap=2, rate=100.0, slowest=10.0)
    assert submits.enter("a")
    assert submits.enter("b")
    for n in range(4):
        submits.enter(f"k{n}")
    clock.now += NOTICE_AFTER_SECONDS
    waits = {wait.key: wait for wait in submits.overdue()}
    # Nothing left the lane lately: the pace of a full lane of slowest steps, 2 per 10 s.
    assert waits["k3"].ahead == 5
    assert waits["k3"].seconds == pytest.approx(6 / 0.2)
    for _ in range(3):  # three steps left, 0.5 s apart, the last 0.5 s ago: 2 per 1.5 s
        assert submits.enter(submits.leave()[0])
        clock.now += 0.5
    assert {w.key: w for w in submits.overdue()}["k3"].seconds == pytest.approx(3 / (2 / 1.5))


def test_a_wait_is_announced_again_only_after_the_renotice_period(clock) -> None:
    submits = lane(clock)
    assert submits.enter("a")
    submits.enter("b")
    clock.now += NOTICE_AFTER_SECONDS
    assert [w.key for w in submits.overdue()] == ["b"]
    submits.noticed("b")
    clock.now += RENOTICE_SECONDS - 1
    assert submits.overdue() == []
    clock.now += 1
    assert [w.key for w in submits.overdue()] == ["b"]
