"""Pure reconciliation of one DliBatchJob: what to do next, and the status each outcome gives.

``plan`` looks at the spec and the stored status and names one action; ``outcomes`` computes
the new status for each outcome (intent written, job accepted or adopted, job seen, cancelled,
DLI error), re-exported here so callers read one namespace. No I/O, no clock: ``now`` is a
parameter, so every rule is a row in a table test. The driver (the ``driver`` package)
performs the actions; the engine (``engine``) decides when.

Rules (DESIGN.md, Behaviour):
- An unresolved submission intent is resolved first: look the job up, adopt it or post it.
- ``activeDeadlineSeconds`` and ``suspend`` cancel the running attempt.
- A dead attempt under ``autoRecovery`` is resubmitted after an exponential, jittered backoff,
  at most ``maxRetryTimes`` times; an attempt the operator cancelled is never retried.
- Final phases (Succeeded, Failed, Cancelled) plan nothing: a finished job costs no DLI call.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime, timedelta

from dli_operator.dli.models import is_terminal
from dli_operator.outcomes import (
    MIRROR_FIELDS,
    NEEDS_A_FIX,
    Reason,
    accepted,
    blocked,
    cancelled,
    claimed,
    current_attempt,
    ended,
    intended,
    may_have_been_sent,
    observed,
    rejected,
    set_condition,
    settled,
    settling,
    stall,
    suspended,
)
from dli_operator.resources.batchjob import DliBatchJob
from dli_operator.resources.status import (
    DliBatchJobStatus,
    Phase,
)
from dli_operator.translate import job_name_for

__all__ = [
    "DEFAULT_MAX_RETRY_TIMES",
    "MIRROR_FIELDS",
    "NEEDS_A_FIX",
    "Action",
    "Cancel",
    "Nothing",
    "Observe",
    "Policy",
    "Reason",
    "Settle",
    "Submit",
    "Wait",
    "accepted",
    "active_batch",
    "blocked",
    "cancelled",
    "claimed",
    "current_attempt",
    "ended",
    "intended",
    "may_have_been_sent",
    "observed",
    "plan",
    "rejected",
    "retry_due",
    "set_condition",
    "settled",
    "settling",
    "stall",
    "suspended",
]

# DLI's own default for max_retry_times (dli_02_0124), which the operator applies itself.
DEFAULT_MAX_RETRY_TIMES = 20


@dataclass(frozen=True)
class Policy:
    """The knobs the pure core needs, as plain values (from settings)."""

    retry_backoff_seconds: float = 10.0
    retry_backoff_max_seconds: float = 300.0


@dataclass(frozen=True)
class Submit:
    attempt: int
    job_name: str


@dataclass(frozen=True)
class Observe:
    batch_id: str


@dataclass(frozen=True)
class Cancel:
    batch_id: str
    reason: str


@dataclass(frozen=True)
class Wait:
    until: datetime


@dataclass(frozen=True)
class Settle:
    """A status change that needs no DLI call (hold while suspended, fail on the deadline)."""

    status: DliBatchJobStatus


@dataclass(frozen=True)
class Nothing:
    reason: str


Action = Submit | Observe | Cancel | Wait | Settle | Nothing


def plan(job: DliBatchJob, *, now: datetime, policy: Policy, deleting: bool = False) -> Action:
    """The one next step for this job."""
    status, spec = job.status, job.spec
    if status.phase is not None and status.phase.is_final:
        return Nothing("finished")
    if status.submission is not None:
        sub = status.submission
        return Submit(sub.attempt, sub.job_name)
    active = active_batch(status)
    if deleting:
        return Cancel(active, Reason.DELETED) if active else Nothing("nothing running")
    if _past_deadline(job, now):
        if active:
            return Cancel(active, Reason.DEADLINE_EXCEEDED)
        return Settle(
            ended(status, Phase.FAILED, Reason.DEADLINE_EXCEEDED, _deadline_msg(job), now)
        )
    if spec.suspend:
        if active:
            return Cancel(active, Reason.SUSPENDED)
        if status.phase == Phase.SUSPENDED:
            return Nothing("suspended")
        return Settle(suspended(status, now))
    if active:
        return Observe(active)
    return _next_submission(job, now=now, policy=policy)


def _next_submission(job: DliBatchJob, *, now: datetime, policy: Policy) -> Action:
    status = job.status
    attempt = current_attempt(status) + 1
    if status.phase == Phase.RECOVERING:
        due = retry_due(job, policy)
        if due is not None and now < due:
            return Wait(due)
    return Submit(attempt, job_name_for(job, attempt))


def active_batch(status: DliBatchJobStatus) -> str | None:
    """The batch id of the current attempt while DLI may still be running it."""
    # After a cancel for suspend the mirror may still say "running": the attempt is over.
    if status.phase == Phase.SUSPENDED or not status.batch_id:
        return None
    return None if status.state and is_terminal(status.state) else status.batch_id


def retry_due(job: DliBatchJob, policy: Policy) -> datetime | None:
    """When a dead attempt may be resubmitted: exponential backoff with deterministic jitter."""
    status = job.status
    if not status.attempts or status.attempts[-1].finish_time is None:
        return None
    base = policy.retry_backoff_seconds * 2 ** max(0, status.retries - 1)
    delay = min(policy.retry_backoff_max_seconds, base)
    # Jitter from the uid, so a restart computes the same time and herds are spread out.
    seed = hashlib.sha256(f"{job.metadata.uid}/{status.retries}".encode()).digest()[0]
    return status.attempts[-1].finish_time + timedelta(seconds=delay * (0.75 + seed / 1020))


def _past_deadline(job: DliBatchJob, now: datetime) -> bool:
    limit, start = job.spec.active_deadline_seconds, job.status.start_time
    return bool(limit and start and now >= start + timedelta(seconds=limit))


def _deadline_msg(job: DliBatchJob) -> str:
    return f"the job ran longer than activeDeadlineSeconds={job.spec.active_deadline_seconds}"
