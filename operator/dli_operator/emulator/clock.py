"""Time as an injected function, so tests move a job through its states without sleeping.

Job state is computed from the clock on every read (no per-job timers), so advancing a
``FakeClock`` is all a test needs to make a job run, finish or die.
"""

from __future__ import annotations

import time
from collections.abc import Callable

Clock = Callable[[], float]
"""Returns the current time in seconds since the epoch, like ``time.time``."""


class FakeClock:
    """A clock that only moves when told to. It starts at the real time, so AK/SK signatures
    made by real clients (which sign with the wall clock) stay inside the 15-minute window."""

    def __init__(self, start: float | None = None) -> None:
        self.now = time.time() if start is None else start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        """Move time forward; jobs see the new time on their next read."""
        self.now += seconds
