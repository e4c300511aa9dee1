"""The submit lane: how many steps that may wait long for DLI (a new attempt) run at once.

A submission may wait minutes for a request slot (ratelimit.py) or for DLI itself; left
alone, thousands of them would hold every worker and no poll or cancel would run. The lane
admits ``cap`` such steps at once. A key that finds it full is parked, in the order it came,
and the next free slot is held for the longest-parked key until its step starts, so a key
that arrives later (a retry, a watch event) cannot take it: first come, first served, as in
the rate limiter.

A parked key has not been stepped, so its job may show no status at all. When it waits much
longer than the configured DLI rate explains (errors, hangs or throttling ahead of it: the
chaos suite's dli-storm, docs/reliability.md), the engine announces the wait on the job, at
most once per ``RENOTICE_SECONDS`` (issue 18: a job with no progress and no word why is
stranded). At the configured pace nothing is announced, so a long queue costs no writes.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

# A parked key waits at least this long before its wait is announced.
NOTICE_AFTER_SECONDS = 10.0
# ...and its wait is announced again at most this often.
RENOTICE_SECONDS = 60.0
# A wait is announced once it exceeds this multiple of what the configured rate explains.
SLACK = 2.0
# The lane's pace is measured over the last this many steps out of it.
PACE_WINDOW = 64


@dataclass(frozen=True)
class Wait:
    """A parked key's wait, as announced: ``ahead`` steps before it, about ``seconds`` long."""

    key: str
    seconds: float
    ahead: int


class SubmitLane:
    """See the module docstring. ``rate`` is this replica's share of the DLI request rate;
    ``slowest_step`` bounds one step (a request deadline), which bounds the lane's pace."""

    def __init__(
        self,
        cap: int,
        rate: Callable[[], float],
        slowest_step: float,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.cap = cap
        self.busy = 0
        self._rate = rate
        self._slowest = slowest_step
        self._clock = clock
        # key -> (when it was parked, how many steps stood before it then)
        self._parked: dict[str, tuple[float, int]] = {}
        self._held: set[str] = set()
        self._noticed: dict[str, float] = {}
        self._left: deque[float] = deque(maxlen=PACE_WINDOW)

    def __len__(self) -> int:
        """Keys parked."""
        return len(self._parked)

    def enter(self, key: str) -> bool:
        """Take a slot for a step of ``key``; False: parked (keeping its place if it had one)."""
        if key in self._held:
            self._held.discard(key)
        elif self.busy + len(self._held) >= self.cap:
            if key not in self._parked:
                self._parked[key] = (self._clock(), self.busy + len(self._held) + len(self._parked))
            return False
        self._parked.pop(key, None)
        self._noticed.pop(key, None)
        self.busy += 1
        return True

    def leave(self) -> list[str]:
        """A step left the lane; return the parked keys now handed a slot (due now)."""
        self.busy -= 1
        self._left.append(self._clock())
        return self._promote()

    def release(self, key: str) -> list[str]:
        """``key`` needs no slot any more (gone, moved away, or its next step is no
        submission); return the parked keys handed the slot it held, if any."""
        self._parked.pop(key, None)
        self._noticed.pop(key, None)
        if key not in self._held:
            return []
        self._held.discard(key)
        return self._promote()

    def overdue(self) -> list[Wait]:
        """The parked keys whose wait is to be announced now.

        A wait is judged by the queue that stood before the key when it was parked, not by its
        place now: its place shrinks as its wait grows, and judged by that, every key of a long
        queue served at exactly the configured rate looked late (bench run N, docs/benchmarks.md).
        """
        now = self._clock()
        explained_per_key = SLACK / self._rate()
        pace = self.pace()
        found = []
        for ahead, (key, (since, before)) in enumerate(self._parked.items()):
            if now - since < max(NOTICE_AFTER_SECONDS, (before + 1) * explained_per_key):
                continue
            if now - self._noticed.get(key, float("-inf")) < RENOTICE_SECONDS:
                continue
            found.append(Wait(key, (ahead + self.busy + 1) / pace, ahead + self.busy))
        return found

    def noticed(self, key: str) -> None:
        """The wait of ``key`` was announced."""
        self._noticed[key] = self._clock()

    def pace(self) -> float:
        """Steps out of the lane per second, lately; never below the pace of a full lane
        whose every step takes ``slowest_step``."""
        floor = self.cap / self._slowest
        if len(self._left) < 2:
            return floor
        span = self._clock() - self._left[0]
        return max(floor, (len(self._left) - 1) / span) if span > 0 else floor

    def _promote(self) -> list[str]:
        handed = []
        while self._parked and self.busy + len(self._held) < self.cap:
            key = next(iter(self._parked))
            del self._parked[key]
            self._noticed.pop(key, None)
            self._held.add(key)
            handed.append(key)
        return handed
