"""What every room of the driver shares: the ``Context`` it acts in, and a few small verdicts.

A room sees the ``Driver`` only through ``Context``: the collaborators (runtime, ledger, clock)
and the delays it hands back. Nothing here performs a call.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Protocol

from dli_operator import reconcile
from dli_operator.dli import errors
from dli_operator.driver.ledger import Ledger
from dli_operator.resources.batchjob import DliBatchJob
from dli_operator.resources.status import DliBatchJobStatus
from dli_operator.runtime import Runtime

Announce = Callable[[str, str, str], None]
"""``announce(type, reason, message)``: post a Kubernetes Event on the job."""

# After a conditional write lost a race, look again this soon (kopf's body catches up).
CONFLICT_RETRY_SECONDS = 1.0


class Context(Protocol):
    """What a room reads from the ``Driver``: read at every use, so a new clock applies at once."""

    runtime: Runtime
    ledger: Ledger
    clock: Callable[[], datetime]
    interval: float
    error_backoff: float
    blocked_retry: float
    abandon_after: float
    settle_seconds: float


def utcnow() -> datetime:
    return datetime.now(UTC)


def always() -> bool:
    return True


def final(status: DliBatchJobStatus) -> bool:
    return status.phase is not None and status.phase.is_final


def recovery(job: DliBatchJob) -> tuple[bool, int]:
    """Whether a dead attempt is resubmitted, and at most how many times."""
    limit = job.spec.max_retry_times
    return bool(job.spec.auto_recovery), (
        reconcile.DEFAULT_MAX_RETRY_TIMES if limit is None else limit
    )


def describe(exc: errors.DliError) -> tuple[str, str]:
    if isinstance(exc, errors.DliApiError):
        code = exc.error_code or str(exc.status)
        return code, f"{code}: {exc.error_msg or exc.message}"
    return "", exc.message
