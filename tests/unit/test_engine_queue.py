"""The engine's work queue: due times, de-duplication, one worker per key, backoff."""

from __future__ import annotations

import asyncio

import pytest
from tests.unit.clock import Clock

from dli_operator.engine.queue import BACKOFF_MAX_SECONDS, WorkQueue


def take_due(queue: WorkQueue) -> list[str]:
    """Every key due now, in order (marked in flight), without waiting."""
    taken = []
    while isinstance(key := queue._pop_due(), str):
        taken.append(key)
    return taken


def test_keys_come_out_in_due_order_and_only_once_due() -> None:
    clock = Clock()
    queue = WorkQueue(clock=clock)
    queue.add("b", 5)
    queue.add("a", 1)
    queue.add("c", 10)
    assert take_due(queue) == []
    clock.now += 5
    assert take_due(queue) == ["a", "b"]
    clock.now += 5
    assert take_due(queue) == ["c"]


def test_a_key_added_twice_keeps_the_sooner_time_and_comes_out_once() -> None:
    clock = Clock()
    queue = WorkQueue(clock=clock)
    queue.add("a", 10)
    queue.add("a", 2)
    queue.add("a", 7)
    assert len(queue) == 1
    clock.now += 2
    assert take_due(queue) == ["a"]
    clock.now += 10
    assert take_due(queue) == []


def test_a_key_in_flight_is_not_handed_out_again_until_done() -> None:
    clock = Clock()
    queue = WorkQueue(clock=clock)
    queue.add("a")
    assert take_due(queue) == ["a"]
    queue.add("a")  # a watch event during the step
    assert take_due(queue) == []
    queue.done("a")
    assert take_due(queue) == ["a"]


def test_done_without_new_work_leaves_no_timer() -> None:
    queue = WorkQueue(clock=Clock())
    queue.add("a")
    assert take_due(queue) == ["a"]
    queue.done("a")
    assert len(queue) == 0
    assert queue.due_in("a") is None


def test_discard_drops_the_timer() -> None:
    clock = Clock()
    queue = WorkQueue(clock=clock)
    queue.add("a", 1)
    queue.discard("a")
    clock.now += 5
    assert take_due(queue) == []
    assert len(queue._heap) == 0


def test_backoff_doubles_per_failure_up_to_the_cap_and_forget_resets_it() -> None:
    queue = WorkQueue(clock=Clock())
    delays = [queue.backoff("a") for _ in range(12)]
    assert delays[:4] == [1.0, 2.0, 4.0, 8.0]
    assert delays[-1] == BACKOFF_MAX_SECONDS
    queue.forget("a")
    assert queue.backoff("a") == 1.0
    assert queue.backoff("b") == 1.0  # per key


async def test_get_waits_for_the_timer_and_wakes_for_a_sooner_key() -> None:
    queue = WorkQueue()
    queue.add("later", 30)
    getter = asyncio.create_task(queue.get())
    await asyncio.sleep(0.05)
    assert not getter.done()
    queue.add("now")
    assert await asyncio.wait_for(getter, 1) == "now"


async def test_many_workers_never_hold_one_key_at_once() -> None:
    queue = WorkQueue()
    holding: set[str] = set()
    steps: list[str] = []
    enough = asyncio.Event()

    async def worker() -> None:
        while (key := await queue.get()) is not None:
            assert key not in holding
            holding.add(key)
            steps.append(key)
            if len(steps) >= 200:
                enough.set()
            await asyncio.sleep(0.001)
            if len(steps) < 200:
                queue.add(key)  # an event while in flight
                queue.add(f"k{len(steps) % 7}")
            holding.discard(key)
            queue.done(key)

    for n in range(7):
        queue.add(f"k{n}")
    workers = [asyncio.create_task(worker()) for _ in range(5)]
    await asyncio.wait_for(enough.wait(), 5)
    await asyncio.wait_for(queue.drained(), 1)
    queue.close()
    await asyncio.wait_for(asyncio.gather(*workers), 1)
    assert set(steps) == {f"k{n}" for n in range(7)}


@pytest.mark.parametrize("count", [10_000])
def test_ten_thousand_timers_cost_one_entry_each(count: int) -> None:
    clock = Clock()
    queue = WorkQueue(clock=clock)
    for n in range(count):
        queue.add(f"ns/job-{n}", n % 10)
        queue.add(f"ns/job-{n}", n % 10 + 5)  # later: ignored, no second entry
    assert len(queue) == count
    assert len(queue._heap) == count
