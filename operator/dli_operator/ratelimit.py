"""A client-side limit on DLI requests: first come, first served, slowed by throttling.

DLI publishes no rate limit, but its gateway throttles per user per minute (APIG.0308,
dli-api.md section 3). Thousands of DliBatchJobs applied at once must queue up in order here
instead of tripping that. The limiter is GCRA (a token bucket expressed as one "theoretical
arrival time"): each caller reserves the next slot when it asks, so waiters are served in
the order they arrived. A 429 halves the rate and pauses for ``Retry-After``; every later
success wins back a little of the configured rate (additive increase, multiplicative
decrease, as TCP does).

Reads (the shared list refresh, a job's own GET, cancels, lookups) are few and keep the
statuses true, so they must not wait behind thousands of queued submissions: an ``urgent``
caller goes first (it only respects a ``Retry-After`` pause) and pushes the queue back by one
slot, so the long-run rate still holds (the benchmark's 10,000-job run showed statuses
~1,000 s stale without this, docs/benchmarks.md).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

# Never slow below one request per ten seconds, however often DLI throttles.
MIN_RATE_PER_SECOND = 0.1
# Each success gives back this share of the configured rate.
RECOVERY_SHARE = 0.05


class RateLimiter:
    """FIFO rate limiter for one DLI endpoint and project."""

    def __init__(
        self,
        rate: float,
        burst: int,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.configured = rate
        self.max_rate = rate
        self.rate = rate
        self.burst = burst
        self._clock = clock
        self._tat = clock()
        self._paused_until = float("-inf")
        self.waiting = 0

    def reserve(self) -> float:
        """Reserve the next slot; return how long the caller must wait for it (seconds)."""
        now = self._clock()
        tolerance = (self.burst - 1) / self.rate
        self._tat = max(self._tat, now)
        wait = max(0.0, self._tat - tolerance - now)
        self._tat += 1.0 / self.rate
        return wait

    def expected_wait(self) -> float:
        """How long a caller asking now would wait (without reserving anything)."""
        now = self._clock()
        tolerance = (self.burst - 1) / self.rate
        return max(0.0, max(self._tat, now) - tolerance - now)

    def reserve_urgent(self) -> float:
        """Take a slot ahead of the queue (which moves back by one); wait only out a pause."""
        now = self._clock()
        self._tat = max(self._tat, now) + 1.0 / self.rate
        return max(0.0, self._paused_until - now)

    async def acquire(self, *, urgent: bool = False) -> float:
        """Wait for this caller's turn; return the seconds waited."""
        wait = self.reserve_urgent() if urgent else self.reserve()
        if wait > 0:
            self.waiting += 1
            try:
                await asyncio.sleep(wait)
            finally:
                self.waiting -= 1
        return wait

    def throttled(self, retry_after: float | None = None) -> None:
        """DLI said 429: halve the rate and hold everyone back for ``retry_after``."""
        self.rate = max(MIN_RATE_PER_SECOND, self.rate / 2)
        self.pause(retry_after)

    def pause(self, seconds: float | None) -> None:
        """Hold every caller back for ``seconds`` (a ``Retry-After``), keeping the rate."""
        if seconds:
            # Past the burst allowance too, or the next ``burst - 1`` callers would not wait.
            tolerance = (self.burst - 1) / self.rate
            now = self._clock()
            self._tat = max(self._tat, now + seconds + tolerance)
            self._paused_until = max(self._paused_until, now + seconds)

    def share(self, fraction: float) -> None:
        """Use ``fraction`` of the configured rate: N shard replicas share one DLI budget
        (DLI's gateway throttles per user, APIG.0308), so each takes 1/N of it (issue 18)."""
        self.max_rate = max(MIN_RATE_PER_SECOND, self.configured * fraction)
        self.rate = min(self.rate, self.max_rate) if fraction < 1 else self.max_rate

    def succeeded(self) -> None:
        """A request went through: recover part of the configured rate."""
        if self.rate < self.max_rate:
            self.rate = min(self.max_rate, self.rate + self.max_rate * RECOVERY_SHARE)
