"""Stranded jobs: a job that has something to do, some replica to do it, and makes no progress.

Issue 18: after a peering handover whose resume came inside the daemons' stop grace, jobs were
left with no daemon at all, unsubmitted for minutes while the active replica sat idle. The
end state of such a run can even look clean (the jobs finish once a fresh process starts), so
the check samples statuses *during* the run and records, per job, when it last changed.

The rule (``due_at`` below), on what any engine shows from the outside, no operator internals:

- **progress** is a change of the job's status fingerprint: phase, DLI state, batch id,
  submission (intent, claim, ``sentAt``), attempts, retries and the reasons of the Submitted and
  Running conditions; the clock of a job also restarts when its DLI batch changes state (then
  there is new work: mirroring it);
- a job is **due** when it is not final (nor Suspended) and does not say it waits on something
  outside the operator (credentials, policy, DLI errors: ``WAITING_ON_OTHERS``); its DLI batch,
  if it has one, has moved on from what the status shows; and none of the documented waits
  explains the delay: a claim whose create may have left (``sentAt`` plus the settle period,
  the ``WaitingForLateCreate`` wait, and then the queue a send again waits in), a retry
  backoff (``RetryScheduled``: the attempt's finish time plus the backoff), or a queue in the
  rate limiter (the wait the status announces in ``WaitingForRequestSlot``, counted from when
  it was announced: a new owner after a handover announces its own queue, a fresh promise; or
  the backlog of unsubmitted jobs at the configured DLI rate);
- a job is **stranded** when it stays due, without progress, for more than two poll intervals
  (``Timings.patience``, with a floor for a loaded machine) while some replica serves it: a
  window in which no replica is expected to serve (a restart, a lease or peering lifetime
  running out, the control plane or DLI being down) is excused with ``excuse``, and a sample
  that cannot read the cluster or DLI excuses itself.
"""

from __future__ import annotations

import re
import subprocess
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

FINAL = frozenset({"Succeeded", "Failed", "Cancelled"})
# DLI's final states (dli_02_0124 table 7): a batch in one of them changes no more.
TERMINAL = frozenset({"success", "dead"})
# Reasons a job gives for waiting on a user or on DLI itself, not on the operator.
WAITING_ON_OTHERS = frozenset(
    {
        "CredentialsUnavailable",
        "PolicyDenied",
        "AuthenticationFailed",
        "DliUnavailable",
        "RateLimited",
    }
)
# The wait the operator announces for a request slot: "about 12s, 30 requests ahead".
ANNOUNCED = re.compile(r"about (\d+(?:\.\d+)?)s")


@dataclass(frozen=True)
class Timings:
    """The operator's settings the rule needs (defaults: tests/e2e/conftest.py's ``FAST``)."""

    poll_seconds: float = 1.0
    settle_seconds: float = 22.0
    """CLAIM_SECONDS (10) + DLI__REQUEST_DEADLINE_SECONDS (10) + LATE_CREATE_MARGIN_SECONDS (2)."""
    retry_backoff_seconds: float = 1.0
    retry_backoff_max_seconds: float = 300.0
    dli_rate: float | None = None
    """DLI requests per second, when a test sets a limit low enough for a queue to matter."""
    floor_seconds: float = 20.0
    """Two poll intervals at 1 s are 2 s; a shared 2-core machine stalls longer than that."""

    @property
    def patience(self) -> float:
        return max(2 * self.poll_seconds, self.floor_seconds)


@dataclass
class Track:
    """What the sampler knows about one job."""

    fingerprint: tuple[Any, ...]
    since: float
    """When the status last changed, or its DLI batch did (epoch seconds)."""
    backlog: int
    """Unsubmitted jobs (this one included) when ``since`` was set."""
    announced: str = ""
    """The Submitted condition's message: a ``WaitingForRequestSlot`` wait is told there."""
    announced_at: float = 0.0
    """When ``announced`` last changed (epoch seconds)."""


@dataclass
class Stranded:
    name: str
    seconds: float
    """How long it had gone without progress when first seen stranded."""
    status: str


def _epoch(stamp: str | None) -> float | None:
    return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp() if stamp else None


def _conditions(status: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {c.get("type", ""): c for c in status.get("conditions") or []}


def fingerprint(status: dict[str, Any], remote_state: str | None) -> tuple[Any, ...]:
    conditions = _conditions(status)
    return (
        status.get("phase"),
        status.get("state"),
        status.get("batchId"),
        repr(status.get("submission")),
        len(status.get("attempts") or []),
        status.get("retries"),
        conditions.get("Submitted", {}).get("reason"),
        conditions.get("Running", {}).get("reason"),
        remote_state,
    )


def unsubmitted(status: dict[str, Any]) -> bool:
    """Not final and with no batch for the current attempt: waiting for a submission."""
    if status.get("phase") in FINAL:
        return False
    return not status.get("batchId") or status.get("submission") is not None


def due_at(
    status: dict[str, Any], remote_state: str | None, track: Track, t: Timings
) -> float | None:
    """When the job should have made progress at the latest, before patience; None: not due."""
    phase = status.get("phase")
    if phase in FINAL or phase == "Suspended":
        return None
    conditions = _conditions(status)
    reasons = {c.get("reason") for c in conditions.values()}
    if reasons & WAITING_ON_OTHERS:
        return None
    submission = status.get("submission")
    if status.get("batchId") and not submission:
        if phase == "Recovering":
            return _retry_at(status, track, t)
        if remote_state is None or (
            remote_state == status.get("state") and remote_state not in TERMINAL
        ):
            return None  # up to date with DLI (a batch DLI lacks is the audit's "lost")
        return track.since
    if phase == "Recovering" and not submission:
        return _retry_at(status, track, t)
    # Waiting for a submission: a queue in the rate limiter explains a wait, the backlog at the
    # configured rate from the last progress, or the wait told in the status from when it was
    # told (a new owner tells its own queue: chaos pause-resume, 2026-12-07).
    due = track.since + (track.backlog / t.dli_rate if t.dli_rate else 0.0)
    submitted = conditions.get("Submitted", {})
    announced = ANNOUNCED.search(submitted.get("message") or "")
    if submitted.get("reason") == "WaitingForRequestSlot" and announced:
        due = max(due, track.announced_at + float(announced.group(1)))
    if submission and submission.get("sentAt"):
        # A create may have left: looked up until the settle period passed (WaitingForLateCreate),
        # then sent again, which waits for a request slot like any send: the later of the two.
        due = max(due, (_epoch(submission["sentAt"]) or track.since) + t.settle_seconds)
    return due


def _retry_at(status: dict[str, Any], track: Track, t: Timings) -> float:
    """RetryScheduled: the attempt's finish time plus the backoff (reconcile.retry_due's bound)."""
    attempts = status.get("attempts") or []
    finished = _epoch(attempts[-1].get("finishTime")) if attempts else None
    retries = int(status.get("retries") or 1)
    backoff = min(t.retry_backoff_max_seconds, t.retry_backoff_seconds * 2.0 ** max(0, retries - 1))
    return max(finished or track.since, track.since) + backoff


@dataclass
class Progress:
    """Samples the jobs' statuses and their DLI batches; records the stranded ones.

    ``read_items`` returns the DliBatchJobs (kubectl's ``items``), ``read_batches`` the
    emulator's ``/_emulator/jobs``; either may fail while the cluster or DLI is down.
    """

    read_items: Callable[[], list[dict[str, Any]]]
    read_batches: Callable[[], list[dict[str, Any]]]
    timings: Timings = field(default_factory=Timings)
    clock: Callable[[], float] = time.time
    period: float = 2.0
    tracks: dict[str, Track] = field(default_factory=dict)
    stranded: dict[str, Stranded] = field(default_factory=dict)
    unserved_until: float = float("-inf")
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def excuse(self, seconds: float) -> None:
        """From now, for ``seconds``, no replica is expected to serve (a handover, a restart)."""
        self.unserved_until = max(self.unserved_until, self.clock() + seconds)

    def forget(self) -> None:
        """Drop what was found so far: from now on only jobs still (or newly) stranded count.

        A job stranded before and still without progress is found again at the next sample.
        """
        self.stranded.clear()

    def sample(self) -> None:
        try:
            items, batches = self.read_items(), self.read_batches()
        except (OSError, subprocess.SubprocessError, ValueError):
            self.excuse(0.0)  # the cluster or DLI is down: nobody can make progress now
            return
        now = self.clock()
        states = {b.get("id"): b.get("state") for b in batches}
        statuses = {i["metadata"]["name"]: i.get("status") or {} for i in items}
        backlog = sum(unsubmitted(s) for s in statuses.values())
        for name, status in statuses.items():
            remote = states.get(status.get("batchId"))
            mark = fingerprint(status, remote)
            told = _conditions(status).get("Submitted", {}).get("message") or ""
            track = self.tracks.get(name)
            if track is None or track.fingerprint != mark:
                track = self.tracks[name] = Track(mark, now, backlog, told, now)
            elif track.announced != told:
                track.announced, track.announced_at = told, now
            due = due_at(status, remote, track, self.timings)
            if due is None or name in self.stranded:
                continue
            if now > max(due, self.unserved_until) + self.timings.patience:
                self.stranded[name] = Stranded(name, round(now - track.since), _describe(status))

    def start(self) -> Progress:
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.wait(self.period):
            self.sample()

    def stop(self) -> list[Stranded]:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
        return sorted(self.stranded.values(), key=lambda s: s.name)


def _describe(status: dict[str, Any]) -> str:
    submitted = _conditions(status).get("Submitted", {})
    sub = status.get("submission") or {}
    return (
        f"phase {status.get('phase')}, batch {status.get('batchId')}, "
        f"Submitted {submitted.get('reason')}: {submitted.get('message')!r}, "
        f"intent {sub.get('attempt')} sentAt {sub.get('sentAt')}"
    )


def report(stranded: Iterable[Stranded]) -> list[str]:
    return [f"{s.name}: no progress for {s.seconds:.0f}s ({s.status})" for s in stranded]
