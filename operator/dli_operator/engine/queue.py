"""A work queue of keys with due times, after client-go's delaying, rate-limited workqueue.

- ``add(key, delay)`` makes a key due at ``now + delay``; a key already due sooner keeps its
  time, so watch events and timers never pile up copies of one key.
- ``get()`` hands out the key due first, once due, and marks it in flight: a key is never
  handed to two workers at once. A key added while in flight is handed out again after
  ``done`` (nothing added during a step is lost).
- ``backoff(key)`` is the per-key exponential delay after a failed step; ``forget`` resets it.

Timers are one heap of (due, sequence, key) with lazy deletion (the dict of due times is the
truth): memory is a few entries per scheduled key and nothing for a key with no timer.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import itertools
import time
from collections.abc import Callable

# Per-key backoff after failed steps: 1 s doubling to 5 minutes (client-go's item backoff).
BACKOFF_BASE_SECONDS = 1.0
BACKOFF_MAX_SECONDS = 300.0


class WorkQueue:
    """Keys with due times; see the module docstring."""

    def __init__(self, *, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._due: dict[str, float] = {}
        self._heap: list[tuple[float, int, str]] = []
        self._sequence = itertools.count()
        self._in_flight: set[str] = set()
        self._again: dict[str, float] = {}
        self._failures: dict[str, int] = {}
        self._changed = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()
        self._closed = False

    def __len__(self) -> int:
        """Keys scheduled (due now or later), in flight excluded."""
        return len(self._due)

    @property
    def in_flight(self) -> int:
        return len(self._in_flight)

    def due_in(self, key: str) -> float | None:
        """Seconds until ``key`` is due (negative when overdue), None when it has no timer."""
        at = self._due.get(key, self._again.get(key))
        return None if at is None else at - self._clock()

    def add(self, key: str, delay: float = 0.0) -> None:
        """Make ``key`` due in ``delay`` seconds, unless it is due sooner already."""
        at = self._clock() + max(0.0, delay)
        if key in self._in_flight:
            self._again[key] = min(at, self._again.get(key, at))
            return
        if key in self._due and self._due[key] <= at:
            return
        self._due[key] = at
        heapq.heappush(self._heap, (at, next(self._sequence), key))
        self._changed.set()

    def discard(self, key: str) -> None:
        """Drop ``key``'s timer (a finished or deleted job); a step in flight ends normally."""
        self._due.pop(key, None)
        self._again.pop(key, None)
        self._failures.pop(key, None)

    async def get(self) -> str | None:
        """The next due key, marked in flight; None once the queue is closed."""
        while not self._closed:
            wait = self._pop_due()
            if isinstance(wait, str):
                return wait
            self._changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), timeout=wait)
        return None

    def done(self, key: str) -> None:
        """The step of ``key`` ended; a key added meanwhile becomes due again."""
        self._in_flight.discard(key)
        if not self._in_flight:
            self._idle.set()
        again = self._again.pop(key, None)
        if again is not None:
            self.add(key, again - self._clock())

    def backoff(self, key: str) -> float:
        """The delay before retrying ``key`` after one more failed step."""
        failures = self._failures.get(key, 0)
        self._failures[key] = failures + 1
        return min(BACKOFF_MAX_SECONDS, BACKOFF_BASE_SECONDS * 2.0**failures)

    def forget(self, key: str) -> None:
        """A step of ``key`` succeeded: its backoff starts over."""
        self._failures.pop(key, None)

    async def drained(self) -> None:
        """Return once no key is in flight."""
        await self._idle.wait()

    def close(self) -> None:
        """Wake every waiting ``get`` with None (shutdown)."""
        self._closed = True
        self._changed.set()

    def _pop_due(self) -> str | float | None:
        """The first due key (marked in flight), or the seconds to wait (None: no timer)."""
        now = self._clock()
        while self._heap:
            at, _, key = self._heap[0]
            if self._due.get(key) != at:
                heapq.heappop(self._heap)  # superseded or discarded
                continue
            if at > now:
                return at - now
            heapq.heappop(self._heap)
            del self._due[key]
            self._in_flight.add(key)
            self._idle.clear()
            return key
        return None
