"""One shared view of DLI's jobs per queue, refreshed by list calls, serving every job's poll.

Polling each job with its own GET costs one DLI call per job per interval; with thousands of
jobs that trips throttling (the ACK JobRun lesson, anchors-operators.md section 0.4). Here the
first job to ask after the view went stale refreshes it with paged list calls filtered by
queue and by the oldest create time still of interest; everyone else asking in the same
interval is served from memory. A job the list did not show is the caller's to GET.

A refresh also keeps the jobs created in the last few intervals that nobody has asked about
yet: a job is first polled one interval after its submission, usually just after some other
job's refresh listed it, and without them every new job would cost one GET (a burst of 10,000
submissions, 10,000 GETs: docs/benchmarks.md).

A refresh that lists a job in a final state wakes the job that asked about it (``wake`` with
the key it asked under), so its status turns final one list after DLI finished it, not up to
an interval after that list too (issue 18's success lag p99, 17.4 s against poll + 5 s). Only
final states: waking on every change would add a ``Running`` write per job, and the writes per
job are a target of their own.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from dli_operator.dli.models import BatchJob, is_terminal

# A job nobody asked about for this many intervals stops widening the list window.
INTEREST_EXPIRY_INTERVALS = 3
# DLI's list "start" filter compares with the job's start; allow for clock skew.
START_SLACK_MS = 60_000

Lister = Callable[[str, int | None], Awaitable[list[BatchJob]]]
"""``lister(queue, start_ms)``: every job in ``queue`` created at or after ``start_ms``."""
Waker = Callable[[str], None]
"""``wake(key)``: make the job asking under ``key`` due now."""


@dataclass(frozen=True, slots=True)
class _Interest:
    created_ms: int | None
    asked_at: float
    key: str


@dataclass
class _QueueView:
    jobs: dict[str, BatchJob] = field(default_factory=dict)
    refreshed_at: float = float("-inf")
    interest: dict[str, _Interest] = field(default_factory=dict)
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    listed_from_ms: float = float("-inf")


class BatchCache:
    """The latest list results per queue, at most one refresh per interval per queue."""

    def __init__(
        self,
        lister: Lister,
        interval_seconds: float,
        *,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
        wake: Waker | None = None,
    ) -> None:
        self._lister = lister
        self._wake = wake
        self._interval = interval_seconds
        self._clock = clock
        # DLI's create times are epoch milliseconds: "recent" is judged by the wall clock.
        self._wall = wall
        self._views: dict[str, _QueueView] = {}

    async def lookup(
        self, queue: str, batch_id: str, created_ms: int | None, *, key: str = ""
    ) -> BatchJob | None:
        """The job as the latest list saw it, refreshing first if that list is stale.

        ``key``: whom a later refresh wakes when it lists the job final (none if empty)."""
        view = self._views.setdefault(queue, _QueueView())
        now = self._clock()
        view.interest[batch_id] = _Interest(created_ms, now, key)
        if self._stale(view, now):
            async with view.lock:
                if self._stale(view, self._clock()):
                    await self._refresh(queue, view, asking=key)
        return view.jobs.get(batch_id)

    def too_new(self, queue: str, created_ms: int | None) -> bool:
        """Whether a job was created after the latest list began (so it cannot be in it yet)."""
        view = self._views.get(queue)
        if view is None or created_ms is None:
            return False
        # create_time is DLI's clock: if it runs behind ours, a job created just after the list
        # began looks listable and gets one GET it did not need; nothing worse.
        return created_ms > view.listed_from_ms

    def forget(self, queue: str, batch_id: str) -> None:
        """Stop listing on behalf of a job that has ended."""
        if view := self._views.get(queue):
            view.interest.pop(batch_id, None)
            view.jobs.pop(batch_id, None)

    def _stale(self, view: _QueueView, now: float) -> bool:
        # A little early rather than late, so the timers of one interval share one refresh.
        return now - view.refreshed_at >= self._interval * 0.9

    async def _refresh(self, queue: str, view: _QueueView, *, asking: str) -> None:
        now = self._clock()
        began_ms = self._wall() * 1000
        horizon = now - self._interval * INTEREST_EXPIRY_INTERVALS
        view.interest = {k: v for k, v in view.interest.items() if v.asked_at >= horizon}
        starts = [i.created_ms for i in view.interest.values() if i.created_ms is not None]
        start = min(starts) - START_SLACK_MS if starts else None
        jobs = await self._lister(queue, start)
        recent_ms = (self._wall() - self._interval * INTEREST_EXPIRY_INTERVALS) * 1000
        recent_ms -= START_SLACK_MS
        view.jobs = {
            job.id: job
            for job in jobs
            if job.id in view.interest or (job.create_time or 0) >= recent_ms
        }
        view.refreshed_at = self._clock()
        view.listed_from_ms = began_ms
        self._wake_finished(view, asking)

    def _wake_finished(self, view: _QueueView, asking: str) -> None:
        """Wake the jobs the list shows final; the one asking reads the list itself."""
        if self._wake is None:
            return
        for batch_id, interest in view.interest.items():
            job = view.jobs.get(batch_id)
            if job is not None and is_terminal(job.state) and interest.key not in ("", asking):
                self._wake(interest.key)
