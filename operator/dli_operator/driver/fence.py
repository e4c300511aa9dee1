"""The submission fence: a create call (POST) leaves at most once per attempt.

A submission is exactly-once because a POST is fenced (DESIGN.md, second round):
- the intent is stored before anything is sent, with the DLI target it goes to (``submit``);
- right before the call, after the rate-limit wait (``_wait_turn``), the process claims the
  attempt with a conditional status write (resourceVersion precondition) that stores ``sentAt``
  and its claim token (``_claim``), and sends only if it still owns the job (kopf has not asked
  it to stop) and the claim is younger than ``CLAIM_SECONDS`` (``_post``);
- a process that lost the job before sending un-claims it (``_release``), so the new owner need
  not wait out a settle period;
- a claim or batch-id write that meets a 409 because another writer moved the status but not
  the intent (a notice of a wait) is made again on the fresh status (``_fresh``): the step
  keeps the slot it waited for, and a batch it created is recorded at once;
- an intent with ``sentAt`` may have reached DLI: it is looked up by its deterministic name
  (no time filter, ``find``) and adopted (``_adopt``), and sent again only once no create could
  still land (``settle_seconds``: the claim's lifetime, the longest a call may take, and a
  late-create margin).

The ledger's ``claims`` and ``unsent`` are this process's memory of its own claims; the stored
status stays the truth, so losing them only costs a lookup.
"""

from __future__ import annotations

import logging
import secrets
import time
from collections.abc import Callable

from dli_operator import metrics, reconcile
from dli_operator.dli import errors
from dli_operator.dli.models import BatchJob
from dli_operator.driver import writer
from dli_operator.driver.context import (
    CONFLICT_RETRY_SECONDS,
    Announce,
    Context,
    final,
    recovery,
)
from dli_operator.driver.ledger import Claim
from dli_operator.kubeapi import KubeApiError
from dli_operator.reconcile import Reason
from dli_operator.resources.batchjob import DliBatchJob
from dli_operator.resources.status import DliBatchJobStatus, DliTarget, Submission
from dli_operator.runtime import Dli
from dli_operator.settings import Settings
from dli_operator.translate import to_request

logger = logging.getLogger(__name__)

# A submission expected to wait at least this long for a rate-limit slot says so in its status.
QUEUE_NOTICE_SECONDS = 2.0
# A claim older than this is never used for a POST: the process claims again. Bounds how late
# a create can leave after the stored ``sentAt`` (a process stalled between claim and call).
CLAIM_SECONDS = 10.0


def settle_seconds(settings: Settings) -> float:
    """The latest a create can still turn into a DLI job after its stored sentAt: the claim's
    lifetime, the longest one call may take (its total deadline), and DLI's late-create
    margin."""
    return (
        CLAIM_SECONDS
        + settings.dli.request_deadline_seconds
        + settings.reconcile.late_create_margin_seconds
    )


async def submit(
    ctx: Context,
    job: DliBatchJob,
    action: reconcile.Submit,
    dli: Dli,
    target: DliTarget,
    announce: Announce,
    *,
    deleting: bool,
    owned: Callable[[], bool],
) -> float | None:
    uid = job.metadata.uid or ""
    sub = job.status.submission
    if sub is None:
        # The intent (and the target it goes to) is stored before anything is sent, in one
        # write: with no queue ahead it claims the attempt too, else it shows the queue.
        sending = dli.limiter.expected_wait() < QUEUE_NOTICE_SECONDS
        new = reconcile.intended(
            job.status,
            action.attempt,
            action.job_name,
            ctx.clock(),
            target=target,
            claim=_token(),
            sending=sending,
        )
        new = (None if sending else _queued(ctx, new, dli)) or new
        job = await writer.write(ctx, job, new, announce)
        if sending:
            _claimed(ctx, uid, job.status.submission)
        return await _post(ctx, job, action, dli, announce, owned=owned, noticed=True)
    unsent = ctx.ledger.unsent.get(uid)
    if reconcile.may_have_been_sent(sub, unsent=bool(unsent and unsent.holds(sub))):
        found = await find(job, action.job_name, dli)
        if found is not None:
            return await _adopt(ctx, job, found, announce)
        if not reconcile.settled(sub, ctx.clock(), ctx.settle_seconds):
            # DLI may still create it (a slow back end): look again, never post meanwhile.
            new = reconcile.settling(job.status, ctx.clock(), ctx.settle_seconds)
            await writer.write(ctx, job, new, announce)
            return ctx.interval
    if deleting or job.spec.suspend:
        # Nothing was sent for this intent, or nothing it sent can land any more: drop it.
        reason = Reason.DELETED if deleting else Reason.SUSPENDED
        new = reconcile.cancelled(job.status, reason, ctx.clock())
        await writer.write(ctx, job, new, announce)
        return None if final(new) else ctx.interval
    return await _post(ctx, job, action, dli, announce, owned=owned)


async def _adopt(
    ctx: Context, job: DliBatchJob, found: BatchJob, announce: Announce
) -> float | None:
    metrics.SUBMISSIONS.labels("adopted").inc()
    auto_recovery, max_retries = recovery(job)
    new = reconcile.accepted(
        job.status,
        found,
        adopted=True,
        now=ctx.clock(),
        auto_recovery=auto_recovery,
        max_retries=max_retries,
    )
    await writer.write(ctx, job, new, announce)
    return None if final(new) else ctx.interval


async def _post(
    ctx: Context,
    job: DliBatchJob,
    action: reconcile.Submit,
    dli: Dli,
    announce: Announce,
    *,
    owned: Callable[[], bool],
    noticed: bool = False,
) -> float | None:
    uid = job.metadata.uid or ""
    request = to_request(job.spec, job_name=action.job_name)
    job = await _wait_turn(ctx, job, dli, announce, noticed=noticed)
    if not owned():
        return await _release(ctx, job, announce)
    job = await _claim(ctx, job, announce)
    claim = ctx.ledger.claims.get(uid)
    # The fence, right before the call: still ours, and a claim too young to be outlived.
    if not owned():
        return await _release(ctx, job, announce)
    if claim is None or not claim.holds(job.status.submission):
        return ctx.interval
    if time.monotonic() - claim.at > CLAIM_SECONDS:
        return CONFLICT_RETRY_SECONDS  # stalled since the claim: claim again first
    # From here this call may reach DLI: no memory may say otherwise.
    ctx.ledger.unsent.pop(uid, None)
    try:
        created = await dli.client.create_batch(request)
    except errors.DliError as exc:
        if _provably_not_created(exc):
            ctx.ledger.unsent[uid] = claim
        raise
    metrics.SUBMISSIONS.labels("posted").inc()
    try:
        new = reconcile.accepted(job.status, created, adopted=False, now=ctx.clock())
        await writer.write(ctx, job, new, announce)
    except writer.Conflict as conflict:
        # Moved while the call was out (a notice of a wait): if the stored intent is still this
        # claim, the batch is recorded on it now, instead of looked up by a later step.
        job = _fresh(job, conflict, lambda fresh: claim.holds(fresh.status.submission))
        new = reconcile.accepted(job.status, created, adopted=False, now=ctx.clock())
        await writer.write(ctx, job, new, announce)
    return ctx.interval


async def _claim(ctx: Context, job: DliBatchJob, announce: Announce) -> DliBatchJob:
    """Claim the attempt with a conditional write, unless this process's fresh claim stands."""
    uid = job.metadata.uid or ""
    claim = ctx.ledger.claims.get(uid)
    sub = job.status.submission
    if claim and claim.holds(sub) and time.monotonic() - claim.at < CLAIM_SECONDS / 2:
        return job
    new = reconcile.claimed(job.status, _token(), ctx.clock())
    try:
        job = await writer.write(ctx, job, new, announce)
    except writer.Conflict as conflict:
        job = await _claim_fresh(ctx, job, conflict, announce)
    _claimed(ctx, uid, job.status.submission)
    return job


async def _claim_fresh(
    ctx: Context, job: DliBatchJob, conflict: writer.Conflict, announce: Announce
) -> DliBatchJob:
    """Claim the stored status when it moved while this step waited for its request slot.

    A former owner's or the lane's notice of a wait rewrites the status while this step sleeps
    in the rate limiter. Giving the step up would throw its turn away and queue the job again
    at the back: in chaos pause-resume, one job waited 8 s, 21.5 s and then 19.5 s more
    (2026-12-07). The turn is this process's either way; the claim stays conditional, and is
    made only on the same unsent intent of the same spec. Anything else is a conflict.
    """
    ours = job.status.submission
    assert ours is not None

    def same_unsent_intent(fresh: DliBatchJob) -> bool:
        theirs, meta = fresh.status.submission, fresh.metadata
        return (
            theirs is not None
            and (theirs.attempt, theirs.job_name) == (ours.attempt, ours.job_name)
            and not reconcile.may_have_been_sent(theirs, unsent=False)
            and meta.generation == job.metadata.generation
            and meta.deletion_timestamp is None
        )

    fresh = _fresh(job, conflict, same_unsent_intent)
    new = reconcile.claimed(fresh.status, _token(), ctx.clock())
    return await writer.write(ctx, fresh, new, announce)


def _fresh(
    job: DliBatchJob, conflict: writer.Conflict, still: Callable[[DliBatchJob], bool]
) -> DliBatchJob:
    """The job as the writer read it after the 409, if the same object and ``still`` holds;
    else the conflict stands."""
    body = conflict.current
    fresh = DliBatchJob.from_body(body) if body is not None else None
    if fresh is None or fresh.metadata.uid != job.metadata.uid or not still(fresh):
        raise conflict
    return fresh


async def _release(ctx: Context, job: DliBatchJob, announce: Announce) -> float:
    """Handed over before sending: un-claim, so the new owner need not wait out a settle."""
    uid = job.metadata.uid or ""
    claim = ctx.ledger.claims.pop(uid, None)
    if claim is not None and claim.holds(job.status.submission):
        new = job.status.model_copy(deep=True)
        assert new.submission is not None
        new.submission.sent_at = None
        try:
            await writer.write(ctx, job, new, announce)
        except (writer.Conflict, KubeApiError) as exc:
            logger.info("could not release the claim on %s: %s", job.metadata.name, exc)
    return ctx.interval


def _claimed(ctx: Context, uid: str, submission: Submission | None) -> None:
    assert submission is not None
    assert submission.claim is not None
    ctx.ledger.claims[uid] = Claim(submission.claim, submission.sent_at, time.monotonic())


async def _wait_turn(
    ctx: Context, job: DliBatchJob, dli: Dli, announce: Announce, *, noticed: bool = False
) -> DliBatchJob:
    """Wait for a DLI request slot; a long wait is shown on the job first (unless it is)."""
    if not noticed and (queued := _queued(ctx, job.status, dli)) is not None:
        job = await writer.write(ctx, job, queued, announce)
    await dli.limiter.acquire()
    return job


def _queued(ctx: Context, status: DliBatchJobStatus, dli: Dli) -> DliBatchJobStatus | None:
    """The status that shows a long wait for a request slot; None for a short one."""
    expected = dli.limiter.expected_wait()
    if expected < QUEUE_NOTICE_SECONDS:
        return None
    ahead = dli.limiter.waiting
    msg = f"waiting for a DLI request slot: about {expected:.0f}s, {ahead} requests ahead"
    return reconcile.blocked(status, Reason.QUEUED, msg, ctx.clock())


async def find(job: DliBatchJob, name: str, dli: Dli) -> BatchJob | None:
    """The DLI job of a stored intent, if the POST reached DLI before we lost track.

    By its deterministic name and queue only: a time filter compares our clock with DLI's,
    and DLI filters ``start`` on the job's start time, which a job still starting lacks.
    """
    queue = job.spec.queue
    async for remote in dli.client.iter_batches(
        job_name=name,
        queue_name=queue,
        cluster_name=None if queue else job.spec.cluster_name,
        pace=lambda: dli.limiter.acquire(urgent=True),
    ):
        if remote.name == name:
            return remote
    return None


def _token() -> str:
    return secrets.token_hex(8)


def _provably_not_created(exc: errors.DliError) -> bool:
    """Whether DLI certainly did not create the job (safe to POST again without a lookup)."""
    if isinstance(exc, errors.DliConnectError):
        return True
    # An answer from DLI or its gateway that is not a server error refused the request.
    return isinstance(exc, errors.DliApiError) and not isinstance(exc, errors.DliServerError)
