"""The DLI request limiter on a fake clock: order, burst, throttling and recovery."""

from __future__ import annotations

import asyncio

import pytest
from tests.unit.clock import Clock

from dli_operator.ratelimit import MIN_RATE_PER_SECOND, RECOVERY_SHARE, RateLimiter


@pytest.fixture
def clock() -> Clock:
    return Clock()


def test_callers_get_slots_in_the_order_they_asked(clock: Clock) -> None:
    limiter = RateLimiter(2.0, 1, clock=clock)
    assert [limiter.reserve() for _ in range(4)] == [0.0, 0.5, 1.0, 1.5]


def test_a_burst_goes_through_at_once_and_the_rest_queue_at_the_rate(clock: Clock) -> None:
    limiter = RateLimiter(1.0, 3, clock=clock)
    assert [limiter.reserve() for _ in range(5)] == [0.0, 0.0, 0.0, 1.0, 2.0]


def test_an_idle_limiter_refills_its_burst(clock: Clock) -> None:
    limiter = RateLimiter(1.0, 3, clock=clock)
    for _ in range(5):
        limiter.reserve()
    clock.now += 10
    assert [limiter.reserve() for _ in range(4)] == [0.0, 0.0, 0.0, 1.0]


def test_waiting_time_counts_down_as_the_clock_moves(clock: Clock) -> None:
    limiter = RateLimiter(1.0, 1, clock=clock)
    limiter.reserve()
    limiter.reserve()
    clock.now += 1.5
    assert limiter.reserve() == pytest.approx(0.5)


def test_throttling_halves_the_rate(clock: Clock) -> None:
    limiter = RateLimiter(4.0, 1, clock=clock)
    limiter.throttled(None)
    assert limiter.rate == 2.0
    assert [limiter.reserve() for _ in range(3)] == [0.0, 0.5, 1.0]


@pytest.mark.parametrize(
    "burst",
    [
        pytest.param(1, id="without a burst"),
        pytest.param(20, id="even with a burst allowance left"),
    ],
)
def test_throttling_holds_everyone_back_for_retry_after(clock: Clock, burst: int) -> None:
    limiter = RateLimiter(10.0, burst, clock=clock)
    limiter.throttled(3.0)
    assert [limiter.reserve() for _ in range(3)] == pytest.approx([3.0, 3.2, 3.4])


def test_a_retry_after_shorter_than_the_queue_does_not_shorten_it(clock: Clock) -> None:
    limiter = RateLimiter(1.0, 1, clock=clock)
    waits = [limiter.reserve() for _ in range(6)]
    assert waits[-1] == 5.0
    limiter.throttled(1.0)
    assert limiter.reserve() >= 6.0


def test_success_recovers_the_rate_gradually_up_to_the_configured_maximum(clock: Clock) -> None:
    limiter = RateLimiter(10.0, 1, clock=clock)
    limiter.throttled(None)
    assert limiter.rate == 5.0
    limiter.succeeded()
    assert limiter.rate == pytest.approx(5.0 + 10.0 * RECOVERY_SHARE)
    rates = []
    for _ in range(40):
        limiter.succeeded()
        rates.append(limiter.rate)
    assert rates == sorted(rates)
    assert max(rates) == 10.0


def test_success_at_full_rate_never_raises_it_further(clock: Clock) -> None:
    limiter = RateLimiter(10.0, 1, clock=clock)
    for _ in range(5):
        limiter.succeeded()
    assert limiter.rate == 10.0


def test_repeated_throttling_never_slows_below_the_floor(clock: Clock) -> None:
    limiter = RateLimiter(1.0, 1, clock=clock)
    for _ in range(20):
        limiter.throttled(None)
    assert limiter.rate == MIN_RATE_PER_SECOND
    limiter.reserve()
    assert limiter.reserve() == pytest.approx(1 / MIN_RATE_PER_SECOND)


async def test_acquire_serves_concurrent_callers_first_come_first_served(clock: Clock) -> None:
    limiter = RateLimiter(100.0, 1, clock=clock)
    served: list[int] = []
    counts: list[int] = []

    async def caller(n: int) -> float:
        waited = await limiter.acquire()
        served.append(n)
        counts.append(limiter.waiting)
        return waited

    waits = await asyncio.gather(*(caller(n) for n in range(4)))
    assert waits == pytest.approx([0.0, 0.01, 0.02, 0.03])
    assert served == [0, 1, 2, 3]
    assert counts == [0, 2, 1, 0], "callers still queued as each one went through"
    assert limiter.waiting == 0


def test_an_urgent_read_goes_ahead_of_queued_submissions_and_moves_the_queue_back(
    clock: Clock,
) -> None:
    limiter = RateLimiter(1.0, 1, clock=clock)
    assert [limiter.reserve() for _ in range(3)] == [0.0, 1.0, 2.0]
    assert limiter.reserve_urgent() == 0.0
    assert limiter.reserve() == 4.0  # one slot later than without the urgent read


def test_an_urgent_read_still_waits_out_a_retry_after_pause(clock: Clock) -> None:
    limiter = RateLimiter(10.0, 5, clock=clock)
    limiter.pause(3.0)
    assert limiter.reserve_urgent() == 3.0
    clock.now += 3.0
    assert limiter.reserve_urgent() == 0.0


def test_shard_replicas_share_the_configured_rate_and_take_it_back() -> None:
    limiter = RateLimiter(10.0, 1)
    limiter.share(1 / 4)
    assert limiter.max_rate == 2.5
    assert limiter.rate == 2.5
    limiter.share(1.0)  # the others left: the whole budget again
    assert limiter.rate == 10.0
    limiter.throttled()
    limiter.share(1 / 2)  # a throttled rate is never raised by a new share
    assert limiter.rate == 5.0
