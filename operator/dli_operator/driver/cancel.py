"""Cancellation: stop the running attempt, tell a refused cancel apart, and know when to let go.

An attempt counts as stopped only once DLI says it ended (``stop``, ``_cancel``). A cancel DLI
refuses while the job runs on is shown on the job. A finalizer that cannot reach DLI at all
(credentials gone) may abandon the batch after a while (``may_abandon``), and says what may
still be running (``abandoned``).
"""

from __future__ import annotations

import logging
from datetime import timedelta

from dli_operator import reconcile
from dli_operator.dli import errors
from dli_operator.dli.models import is_terminal
from dli_operator.driver import writer
from dli_operator.driver.context import Announce, Context, describe, final
from dli_operator.kubeapi import KubeApiError
from dli_operator.reconcile import Reason
from dli_operator.resources.batchjob import DliBatchJob
from dli_operator.runtime import Dli

logger = logging.getLogger(__name__)


async def stop(
    ctx: Context,
    job: DliBatchJob,
    batch_id: str,
    reason: str,
    dli: Dli,
    announce: Announce,
    *,
    deleting: bool,
) -> float | None:
    """Cancel the running attempt; it counts as stopped only once DLI says it ended."""
    try:
        await _cancel(dli, batch_id)
    except errors.DliClientError as exc:
        if deleting or isinstance(exc, errors.DliAuthError | errors.DliThrottled):
            raise
        _, message = describe(exc)
        text = f"DLI refused to cancel batch {batch_id}: {message}"
        new = reconcile.blocked(job.status, Reason.CANCEL_REFUSED, text, ctx.clock())
        await writer.write(ctx, job, new, announce)
        return ctx.error_backoff
    new = reconcile.cancelled(job.status, reason, ctx.clock())
    await writer.write(ctx, job, new, announce)
    return None if final(new) else ctx.interval


async def _cancel(dli: Dli, batch_id: str) -> None:
    """Cancel a batch; returns once DLI no longer runs it, raises while it still does."""
    await dli.limiter.acquire(urgent=True)
    try:
        await dli.client.cancel_batch(batch_id)
    except errors.DliNotFound as exc:
        logger.info("DLI batch %s needs no cancel: %s", batch_id, exc)
    except errors.DliClientError as exc:
        if isinstance(exc, errors.DliAuthError | errors.DliThrottled):
            raise
        # DLI answers 400 for a batch that already ended, and also for a cancel it refuses
        # while the job runs on: only its state tells them apart (issue 10, item 8).
        await dli.limiter.acquire(urgent=True)
        remote = await dli.client.get_batch(batch_id)
        if not is_terminal(remote.state):
            raise
        logger.info("DLI batch %s needs no cancel: it is %s", batch_id, remote.state)


async def may_abandon(ctx: Context, job: DliBatchJob) -> bool:
    """Whether a finalizer that cannot reach DLI may let go (issue 10, item 9).

    In a namespace being deleted the Secret and RoleBinding are usually gone first and
    never come back; elsewhere the user gets ``abandon_after_seconds`` to restore them.
    """
    asked = job.metadata.deletion_timestamp
    if asked and ctx.clock() >= asked + timedelta(seconds=ctx.abandon_after):
        return True
    try:
        return await ctx.runtime.kube.namespace_terminating(job.metadata.namespace or "")
    except KubeApiError:
        return False


def abandoned(job: DliBatchJob, exc: Exception, announce: Announce) -> None:
    """Announce what may still run in DLI after the finalizer let go of it."""
    batch = reconcile.active_batch(job.status)
    sub = job.status.submission
    target = job.status.target
    where = f" in DLI project {target.project_id} at {target.endpoint}" if target else ""
    if batch:
        what = f"DLI batch {batch}{where} may still be running"
    elif sub:
        what = f"a DLI job named {sub.job_name}{where} may still be running"
    else:
        return
    announce(
        "Warning", Reason.CANCEL_ABANDONED, f"{what}: cannot cancel it ({exc}); cancel it in DLI"
    )
