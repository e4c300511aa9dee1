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
    # Nothing left the lane for 60 s. Before kn stood the busy step and n keys: (n + 2) steps,
    # 0.1 s each at the configured rate, twice that before it is late: k0..k298 are late.
    clock.now += 60
    late = [wait.key for wait in submits.overdue()]
    assert late == [f"k{n}" for n in range(299)]


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


def test_a_queue_served_at_the_configured_rate_announces_nothing_however_long(clock) -> None:
    # bench run N (10,000 jobs at 10 req/s): judged by its place *now*, a key looked late long
    # before its turn (its place shrinks, its wait grows), so every job got a wait written and
    # then one a minute: 7 status writes per job instead of 4. A wait is judged by the queue
    # that stood before the key when it was parked.
    submits = lane(clock, cap=1, rate=10.0)
    assert submits.enter("busy")
    for n in range(2000):
        assert not submits.enter(f"k{n}")
    announced = []
    for _ in range(2000):  # one step leaves every 0.1 s: the configured rate, exactly
        clock.now += 0.1
        (handed,) = submits.leave()
        assert submits.enter(handed)
        announced += submits.overdue()
    assert announced == []


def test_a_queue_served_at_a_third_of_the_rate_is_announced_once_a_minute(clock) -> None:
    submits = lane(clock, cap=1, rate=10.0)
    assert submits.enter("busy")
    for n in range(300):
        assert not submits.enter(f"k{n}")
    announced: dict[str, int] = {}
    for _ in range(300):  # DLI throttles: one step every 0.3 s
        clock.now += 0.3
        (handed,) = submits.leave()
        assert submits.enter(handed)
        for wait in submits.overdue():
            submits.noticed(wait.key)
            announced[wait.key] = announced.get(wait.key, 0) + 1
    # k299 waited 90 s where 30 s were explained: said at 60 s (2 x 30), not again since.
    assert announced["k299"] == 1
    assert "k10" not in announced  # 3.3 s, under the 10 s floor
    assert max(announced.values()) <= 2
