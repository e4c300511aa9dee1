"""Drives one DliBatchJob one step at a time: plan, call DLI, store the status.

The pure core (``reconcile.py``) decides; this module performs: it resolves credentials, waits
for a rate-limit slot, calls DLI, and writes the status directly through the status
subresource, so each step is stored before the next begins.

A submission is exactly-once because a POST is fenced (DESIGN.md, second round):
- the intent is stored before anything is sent, with the DLI target it goes to;
- right before the call, after the rate-limit wait, the process claims the attempt with a
  conditional status write (resourceVersion precondition) that stores ``sentAt`` and its claim
  token, and sends only if it still owns the job (kopf has not asked it to stop) and the claim
  is younger than ``CLAIM_SECONDS``;
- an intent with ``sentAt`` may have reached DLI: it is looked up by its deterministic name
  (no time filter) and adopted, and sent again only once no create could still land (the
  settle period: the claim's lifetime, the longest a call may take, and a late-create margin).

Per-process memory (``Ledger``) serialises steps per object, remembers statuses this process
wrote (kopf's body can lag behind them), its fresh claims, and the claims whose call provably
never reached DLI (bound to the exact stored claim, so void once the stored intent differs).
Losing it (a crash) is always safe: the stored status is the source of truth.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from pydantic import ValidationError

from dli_operator import metrics, reconcile
from dli_operator.dli import errors, retries
from dli_operator.dli.models import BatchJob, is_terminal
from dli_operator.kubeapi import KubeApiError
from dli_operator.reconcile import Reason
from dli_operator.resources import gitops, health
from dli_operator.resources.batchjob import DeletionPolicy, DliBatchJob
from dli_operator.resources.status import DliBatchJobStatus, DliTarget, Phase, Submission
from dli_operator.runtime import ConfigurationError, Dli, Runtime
from dli_operator.translate import to_request

logger = logging.getLogger(__name__)

Announce = Callable[[str, str, str], None]
"""``announce(type, reason, message)``: post a Kubernetes Event on the job."""

# An error status nobody can act on soon (e.g. a malformed object) is looked at again this late.
IDLE_SECONDS = 300.0
# A submission expected to wait at least this long for a rate-limit slot says so in its status.
QUEUE_NOTICE_SECONDS = 2.0
# A claim older than this is never used for a POST: the process claims again. Bounds how late
# a create can leave after the stored ``sentAt`` (a process stalled between claim and call).
CLAIM_SECONDS = 10.0
PLURAL = "dlibatchjobs"
# After a conditional write lost a race, look again this soon (kopf's body catches up).
CONFLICT_RETRY_SECONDS = 1.0
# Reasons whose conditions are errors: announced as Warning Events when they appear.
WARNING_REASONS = frozenset(
    {
        Reason.JOB_FAILED,
        Reason.RETRIES_EXHAUSTED,
        Reason.RETRY_SCHEDULED,
        Reason.DEADLINE_EXCEEDED,
        Reason.SUBMIT_REJECTED,
        Reason.DLI_UNAVAILABLE,
        Reason.CREDENTIALS,
        Reason.POLICY_DENIED,
        Reason.AUTHENTICATION_FAILED,
        Reason.RATE_LIMITED,
        Reason.UNKNOWN_STATE,
        Reason.CANCEL_REFUSED,
    }
)


def _always() -> bool:
    return True


class Conflict(Exception):
    """A conditional status write found the object changed: another process acted on it."""


@dataclass(frozen=True)
class Claim:
    """A claim this process stored: its token, ``sentAt``, and when (monotonic) it was stored."""

    token: str
    sent_at: datetime | None
    at: float

    def holds(self, submission: Submission | None) -> bool:
        """Whether ``submission`` is exactly the intent this claim was stored with."""
        return (
            submission is not None
            and submission.claim == self.token
            and submission.sent_at == self.sent_at
        )


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass
class Ledger:
    """What this process knows beyond the stored objects; all of it may be lost safely."""

    locks: dict[str, asyncio.Lock] = field(default_factory=dict)
    written: dict[str, tuple[int, DliBatchJobStatus]] = field(default_factory=dict)
    claims: dict[str, Claim] = field(default_factory=dict)
    unsent: dict[str, Claim] = field(default_factory=dict)
    """Claims whose create call provably never reached DLI (refused connection, 4xx)."""
    deleting: set[str] = field(default_factory=set)

    def lock(self, uid: str) -> asyncio.Lock:
        return self.locks.setdefault(uid, asyncio.Lock())

    def forget(self, uid: str) -> None:
        """Drop everything about a job that is final or gone (memory stays per live job)."""
        self.locks.pop(uid, None)
        self.written.pop(uid, None)
        self.claims.pop(uid, None)
        self.unsent.pop(uid, None)
        self.deleting.discard(uid)


class Driver:
    """Performs reconcile steps for every DliBatchJob of this operator."""

    def __init__(
        self,
        runtime: Runtime,
        policy: reconcile.Policy,
        *,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.runtime = runtime
        self.policy = policy
        self.clock = clock
        self.ledger = Ledger()
        settings = runtime.settings
        self.interval = settings.reconcile.poll_interval_seconds
        self.error_backoff = settings.reconcile.error_backoff_seconds
        self.blocked_retry = settings.reconcile.blocked_retry_seconds
        self.abandon_after = settings.reconcile.abandon_after_seconds
        # The latest a create can still turn into a DLI job after its stored sentAt: the claim's
        # lifetime, the longest one call may take (its total deadline), and DLI's late-create
        # margin.
        self.settle_seconds = (
            CLAIM_SECONDS
            + settings.dli.request_deadline_seconds
            + settings.reconcile.late_create_margin_seconds
        )

    async def step(
        self,
        body: Mapping[str, Any],
        announce: Announce,
        *,
        owned: Callable[[], bool] = _always,
    ) -> float | None:
        """One reconcile step; the seconds until the next one, or None once the job is final.

        ``owned`` says whether this process still holds the job (kopf has not asked its daemon
        to stop, e.g. a peering handover); it is checked right before any create call.
        """
        job = self._parse(body, announce)
        if job is None:
            return IDLE_SECONDS
        uid = job.metadata.uid or ""
        async with self.ledger.lock(uid):
            job = self._freshest(job, body)
            deleting = uid in self.ledger.deleting or bool(
                body["metadata"].get("deletionTimestamp")
            )
            action = reconcile.plan(job, now=self.clock(), policy=self.policy, deleting=deleting)
            try:
                delay = await self._perform(job, action, announce, deleting=deleting, owned=owned)
            except Conflict:
                self.ledger.written.pop(uid, None)
                delay = CONFLICT_RETRY_SECONDS
        if delay is None:
            self.ledger.forget(uid)
        return delay

    async def finalize(self, body: Mapping[str, Any], announce: Announce) -> float | None:
        """On deletion: cancel the running attempt unless ``deletionPolicy: Orphan``.

        Returns None when the finalizer may go, or the seconds until it should be tried again
        (a create that may still land in DLI is waited for, so it can be cancelled).
        """
        job = self._parse(body, announce)
        if job is None:
            return None
        uid = job.metadata.uid or ""
        self.ledger.deleting.add(uid)
        if job.spec.deletion_policy == DeletionPolicy.ORPHAN:
            self.ledger.forget(uid)
            return None
        try:
            delay = await self._finalize_steps(job, body, announce)
        except (ConfigurationError, errors.DliAuthError) as exc:
            if not await self._may_abandon(job):
                raise
            _abandoned(self._latest(job), exc, announce)
            delay = None
        if delay is None:
            self.ledger.forget(uid)
        return delay

    async def _finalize_steps(
        self, job: DliBatchJob, body: Mapping[str, Any], announce: Announce
    ) -> float | None:
        # At most: adopt an in-flight submission, then cancel it.
        for _ in range(3):
            async with self.ledger.lock(job.metadata.uid or ""):
                job = self._freshest(job, body)
                action = reconcile.plan(job, now=self.clock(), policy=self.policy, deleting=True)
                if isinstance(action, reconcile.Nothing):
                    return None
                try:
                    delay = await self._perform(
                        job, action, announce, deleting=True, raise_errors=True
                    )
                except Conflict:
                    self.ledger.written.pop(job.metadata.uid or "", None)
                    return CONFLICT_RETRY_SECONDS
                waiting = self._freshest(job, body).status.submission
                if isinstance(action, reconcile.Submit) and waiting is not None:
                    return delay  # a create that may still land: wait for it
        return self.interval

    async def _may_abandon(self, job: DliBatchJob) -> bool:
        """Whether a finalizer that cannot reach DLI may let go (issue 10, item 9).

        In a namespace being deleted the Secret and RoleBinding are usually gone first and
        never come back; elsewhere the user gets ``abandon_after_seconds`` to restore them.
        """
        asked = job.metadata.deletion_timestamp
        if asked and self.clock() >= asked + timedelta(seconds=self.abandon_after):
            return True
        try:
            return await self.runtime.kube.namespace_terminating(job.metadata.namespace or "")
        except KubeApiError:
            return False

    # --- actions ----------------------------------------------------------------------------

    async def _perform(
        self,
        job: DliBatchJob,
        action: reconcile.Action,
        announce: Announce,
        *,
        deleting: bool,
        raise_errors: bool = False,
        owned: Callable[[], bool] = _always,
    ) -> float | None:
        try:
            match action:
                case reconcile.Nothing():
                    return None if _final(job.status) else self.interval
                case reconcile.Wait(until=until):
                    return max(0.5, (until - self.clock()).total_seconds())
                case reconcile.Settle(status=status):
                    await self._write(job, status, announce)
                    return None if _final(status) else self.interval
                case _:
                    target = self._target(job, action)
                    dli = await self.runtime.dli_at(job.metadata.namespace or "", target)
                    try:
                        return await self._remote(
                            job, action, dli, announce, deleting=deleting, owned=owned
                        )
                    except errors.DliThrottled as exc:
                        dli.limiter.pause(exc.retry_after)  # everyone waits, not just this job
                        raise
                    except errors.DliAuthError as exc:
                        self.runtime.reject(dli, _describe(exc)[1])  # no job retries this key
                        raise
        except ConfigurationError as exc:
            if raise_errors:
                raise
            job = self._latest(job)
            new = reconcile.blocked(job.status, exc.reason, str(exc), self.clock())
            await self._write(job, new, announce)
            return self.blocked_retry
        except errors.DliError as exc:
            if raise_errors:
                raise
            return await self._dli_failed(self._latest(job), exc, announce)

    def _target(self, job: DliBatchJob, action: reconcile.Action) -> DliTarget:
        """The recorded target of the current attempt; the spec's only for a new attempt."""
        status = job.status
        new_attempt = isinstance(action, reconcile.Submit) and status.submission is None
        if status.target is not None and not new_attempt:
            return status.target
        # A new attempt, or a status stored by 0.1: where the spec says now.
        target = self.runtime.target_for(job.spec)
        return DliTarget(
            endpoint=target.endpoint,
            project_id=target.project_id,
            credentials_secret=target.credentials_secret,
        )

    async def _remote(
        self,
        job: DliBatchJob,
        action: reconcile.Action,
        dli: Dli,
        announce: Announce,
        *,
        deleting: bool,
        owned: Callable[[], bool],
    ) -> float | None:
        match action:
            case reconcile.Submit():
                target = self._target(job, action)
                return await self._submit(
                    job, action, dli, target, announce, deleting=deleting, owned=owned
                )
            case reconcile.Observe(batch_id=batch_id):
                return await self._observe(job, batch_id, dli, announce)
            case reconcile.Cancel(batch_id=batch_id, reason=reason):
                return await self._stop(job, batch_id, reason, dli, announce, deleting=deleting)
        raise AssertionError(f"unexpected action {action!r}")

    async def _submit(
        self,
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
                self.clock(),
                target=target,
                claim=_token(),
                sending=sending,
            )
            new = (None if sending else self._queued(new, dli)) or new
            job = await self._write(job, new, announce)
            if sending:
                self._claimed(uid, job.status.submission)
            return await self._post(job, action, dli, announce, owned=owned, noticed=True)
        unsent = self.ledger.unsent.get(uid)
        if reconcile.may_have_been_sent(sub, unsent=bool(unsent and unsent.holds(sub))):
            found = await self._find(job, action.job_name, dli)
            if found is not None:
                return await self._adopt(job, found, announce)
            if not reconcile.settled(sub, self.clock(), self.settle_seconds):
                # DLI may still create it (a slow back end): look again, never post meanwhile.
                new = reconcile.settling(job.status, self.clock(), self.settle_seconds)
                await self._write(job, new, announce)
                return self.interval
        if deleting or job.spec.suspend:
            # Nothing was sent for this intent, or nothing it sent can land any more: drop it.
            reason = Reason.DELETED if deleting else Reason.SUSPENDED
            new = reconcile.cancelled(job.status, reason, self.clock())
            await self._write(job, new, announce)
            return None if _final(new) else self.interval
        return await self._post(job, action, dli, announce, owned=owned)

    async def _adopt(self, job: DliBatchJob, found: BatchJob, announce: Announce) -> float | None:
        metrics.SUBMISSIONS.labels("adopted").inc()
        auto_recovery, max_retries = _recovery(job)
        new = reconcile.accepted(
            job.status,
            found,
            adopted=True,
            now=self.clock(),
            auto_recovery=auto_recovery,
            max_retries=max_retries,
        )
        await self._write(job, new, announce)
        return None if _final(new) else self.interval

    async def _post(
        self,
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
        job = await self._wait_turn(job, dli, announce, noticed=noticed)
        if not owned():
            return await self._release(job, announce)
        job = await self._claim(job, announce)
        claim = self.ledger.claims.get(uid)
        # The fence, right before the call: still ours, and a claim too young to be outlived.
        if not owned():
            return await self._release(job, announce)
        if claim is None or not claim.holds(job.status.submission):
            return self.interval
        if time.monotonic() - claim.at > CLAIM_SECONDS:
            return CONFLICT_RETRY_SECONDS  # stalled since the claim: claim again first
        # From here this call may reach DLI: no memory may say otherwise.
        self.ledger.unsent.pop(uid, None)
        try:
            created = await dli.client.create_batch(request)
        except errors.DliError as exc:
            if _provably_not_created(exc):
                self.ledger.unsent[uid] = claim
            raise
        metrics.SUBMISSIONS.labels("posted").inc()
        new = reconcile.accepted(job.status, created, adopted=False, now=self.clock())
        await self._write(job, new, announce)
        return self.interval

    async def _claim(self, job: DliBatchJob, announce: Announce) -> DliBatchJob:
        """Claim the attempt with a conditional write, unless this process's fresh claim stands."""
        uid = job.metadata.uid or ""
        claim = self.ledger.claims.get(uid)
        sub = job.status.submission
        if claim and claim.holds(sub) and time.monotonic() - claim.at < CLAIM_SECONDS / 2:
            return job
        new = reconcile.claimed(job.status, _token(), self.clock())
        job = await self._write(job, new, announce)
        self._claimed(uid, job.status.submission)
        return job

    async def _release(self, job: DliBatchJob, announce: Announce) -> float:
        """Handed over before sending: un-claim, so the new owner need not wait out a settle."""
        uid = job.metadata.uid or ""
        claim = self.ledger.claims.pop(uid, None)
        if claim is not None and claim.holds(job.status.submission):
            new = job.status.model_copy(deep=True)
            assert new.submission is not None
            new.submission.sent_at = None
            try:
                await self._write(job, new, announce)
            except (Conflict, KubeApiError) as exc:
                logger.info("could not release the claim on %s: %s", job.metadata.name, exc)
        return self.interval

    def _claimed(self, uid: str, submission: Submission | None) -> None:
        assert submission is not None
        assert submission.claim is not None
        self.ledger.claims[uid] = Claim(submission.claim, submission.sent_at, time.monotonic())

    async def _wait_turn(
        self, job: DliBatchJob, dli: Dli, announce: Announce, *, noticed: bool = False
    ) -> DliBatchJob:
        """Wait for a DLI request slot; a long wait is shown on the job first (unless it is)."""
        if not noticed and (queued := self._queued(job.status, dli)) is not None:
            job = await self._write(job, queued, announce)
        await dli.limiter.acquire()
        return job

    def _queued(self, status: DliBatchJobStatus, dli: Dli) -> DliBatchJobStatus | None:
        """The status that shows a long wait for a request slot; None for a short one."""
        expected = dli.limiter.expected_wait()
        if expected < QUEUE_NOTICE_SECONDS:
            return None
        ahead = dli.limiter.waiting
        msg = f"waiting for a DLI request slot: about {expected:.0f}s, {ahead} requests ahead"
        return reconcile.blocked(status, Reason.QUEUED, msg, self.clock())

    async def _find(self, job: DliBatchJob, name: str, dli: Dli) -> BatchJob | None:
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

    async def _observe(
        self, job: DliBatchJob, batch_id: str, dli: Dli, announce: Announce
    ) -> float | None:
        queue = job.spec.queue or job.spec.cluster_name or ""
        created = job.status.create_time
        created_ms = int(created.timestamp() * 1000) if created else None
        remote = await dli.cache.lookup(queue, batch_id, created_ms)
        if remote is None and dli.cache.too_new(queue, created_ms):
            return self.interval  # created after the last list began: the next one shows it
        if remote is None:
            await dli.limiter.acquire(urgent=True)
            remote = await dli.client.get_batch(batch_id)
        auto_recovery, max_retries = _recovery(job)
        new = reconcile.observed(
            job.status,
            remote,
            now=self.clock(),
            auto_recovery=auto_recovery,
            max_retries=max_retries,
        )
        if _final(new) or is_terminal(remote.state):
            dli.cache.forget(queue, batch_id)
        await self._write(job, new, announce)
        return None if _final(new) else self.interval

    async def _stop(
        self,
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
            await self._cancel(dli, batch_id)
        except errors.DliClientError as exc:
            if deleting or isinstance(exc, errors.DliAuthError | errors.DliThrottled):
                raise
            _, message = _describe(exc)
            text = f"DLI refused to cancel batch {batch_id}: {message}"
            new = reconcile.blocked(job.status, Reason.CANCEL_REFUSED, text, self.clock())
            await self._write(job, new, announce)
            return self.error_backoff
        new = reconcile.cancelled(job.status, reason, self.clock())
        await self._write(job, new, announce)
        return None if _final(new) else self.interval

    async def _cancel(self, dli: Dli, batch_id: str) -> None:
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

    async def _dli_failed(
        self, job: DliBatchJob, exc: errors.DliError, announce: Announce
    ) -> float | None:
        now = self.clock()
        code, message = _describe(exc)
        if isinstance(exc, errors.DliAuthError):
            new = reconcile.blocked(job.status, Reason.AUTHENTICATION_FAILED, message, now)
            delay = self.blocked_retry
        elif isinstance(exc, errors.DliThrottled):
            new = reconcile.blocked(job.status, Reason.RATE_LIMITED, message, now)
            delay = exc.retry_after or self.error_backoff
        elif retries.verdict(exc) == retries.Verdict.TERMINAL and job.status.submission:
            metrics.RECONCILE_ERRORS.labels("permanent").inc()
            new = reconcile.rejected(job.status, code, message.removeprefix(f"{code}: "), now)
            delay = None
        else:
            metrics.RECONCILE_ERRORS.labels("temporary").inc()
            new = reconcile.blocked(job.status, Reason.DLI_UNAVAILABLE, message, now)
            delay = self.error_backoff
        await self._write(job, new, announce)
        return delay

    # --- status -----------------------------------------------------------------------------

    async def _write(
        self, job: DliBatchJob, new: DliBatchJobStatus, announce: Announce
    ) -> DliBatchJob:
        """Store ``new`` through the status subresource (only what changed) and announce it.

        Every write is conditional on the status it was computed from: a status computed from
        an older view (a replica that lost the job, a stale watch) can never move an attempt
        backwards; the chaos suite saw exactly that post an attempt twice (docs/reliability.md).
        """
        new.observed_generation = job.metadata.generation
        new = health.summarize(new, self.clock(), gitops_ttl_risk=gitops.job_ttl_risk(job))
        patch = new.to_patch(since=job.status)
        if not patch:
            return job
        meta = job.metadata
        stored = await self._patch_if_unchanged(job, patch)
        version = _version(stored)
        if meta.uid and version is not None:
            self.ledger.written[meta.uid] = (version, new)
        metrics.record_transition(job, new, self.clock())
        _announce(job.status, new, announce)
        rv = str(version) if version is not None else None
        return job.model_copy(
            update={"status": new, "metadata": meta.model_copy(update={"resource_version": rv})}
        )

    async def _patch_if_unchanged(self, job: DliBatchJob, patch: dict[str, Any]) -> dict[str, Any]:
        """PATCH the status only if it is still ``job.status``; else raise Conflict.

        The resourceVersion precondition makes it atomic. It is object-wide, though, and kopf's
        own patches (finalizer, annotations) move it too: on a 409 the object is read again,
        and if only its metadata changed the patch is sent once more at the new version.
        """
        meta, kube = job.metadata, self.runtime.kube
        namespace = meta.namespace or ""
        version = meta.resource_version
        for _ in range(2):
            try:
                return await kube.patch_status(
                    namespace, meta.name, patch, resource_version=version
                )
            except KubeApiError as exc:
                if exc.status != 409:
                    raise
            current = await kube.get_object(PLURAL, namespace, meta.name)
            stored = DliBatchJobStatus.model_validate((current or {}).get("status") or {})
            if current is None or stored.to_patch() != job.status.to_patch():
                break
            version = (current.get("metadata") or {}).get("resourceVersion")
        raise Conflict(f"{namespace}/{meta.name}: the status changed since it was read")

    def _latest(self, job: DliBatchJob) -> DliBatchJob:
        """The job with the status this process stored last, if newer (a step may fail midway)."""
        return self._mine_if_newer(job, _number(job.metadata.resource_version)) or job

    def _freshest(self, job: DliBatchJob, body: Mapping[str, Any]) -> DliBatchJob:
        """The job with the newest status: kopf's body, or what this process wrote since."""
        mine = self._mine_if_newer(job, _version(body))
        if mine is not None:
            return mine
        try:
            return DliBatchJob.from_body(body)
        except ValidationError:
            return job

    def _mine_if_newer(self, job: DliBatchJob, seen: int | None) -> DliBatchJob | None:
        """``job`` with the status (and version) this process wrote, if newer than ``seen``."""
        mine = self.ledger.written.get(job.metadata.uid or "")
        if mine is None or (seen is not None and seen >= mine[0]):
            return None
        meta = job.metadata.model_copy(update={"resource_version": str(mine[0])})
        return job.model_copy(update={"status": mine[1].model_copy(deep=True), "metadata": meta})

    def _parse(self, body: Mapping[str, Any], announce: Announce) -> DliBatchJob | None:
        try:
            return DliBatchJob.from_body(body)
        except ValidationError as exc:
            # The CRD schema should make this impossible; say so instead of crashing.
            announce("Warning", "Malformed", f"the DliBatchJob does not parse: {exc}"[:1024])
            return None


def _token() -> str:
    return secrets.token_hex(8)


def _abandoned(job: DliBatchJob, exc: Exception, announce: Announce) -> None:
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


def _final(status: DliBatchJobStatus) -> bool:
    return status.phase is not None and status.phase.is_final


def _recovery(job: DliBatchJob) -> tuple[bool, int]:
    """Whether a dead attempt is resubmitted, and at most how many times."""
    limit = job.spec.max_retry_times
    return bool(job.spec.auto_recovery), (
        reconcile.DEFAULT_MAX_RETRY_TIMES if limit is None else limit
    )


def _version(body: Mapping[str, Any]) -> int | None:
    return _number((body.get("metadata") or {}).get("resourceVersion"))


def _number(value: object) -> int | None:
    # resourceVersion is opaque by contract, but the apiserver hands out etcd revisions; if it
    # ever is not a number, the stored object simply always wins.
    return int(value) if isinstance(value, str) and value.isdigit() else None


def _provably_not_created(exc: errors.DliError) -> bool:
    """Whether DLI certainly did not create the job (safe to POST again without a lookup)."""
    if isinstance(exc, errors.DliConnectError):
        return True
    # An answer from DLI or its gateway that is not a server error refused the request.
    return isinstance(exc, errors.DliApiError) and not isinstance(exc, errors.DliServerError)


def _describe(exc: errors.DliError) -> tuple[str, str]:
    if isinstance(exc, errors.DliApiError):
        code = exc.error_code or str(exc.status)
        return code, f"{code}: {exc.error_msg or exc.message}"
    return "", exc.message


def _announce(old: DliBatchJobStatus, new: DliBatchJobStatus, announce: Announce) -> None:
    """One Event per phase change, and one per new error condition."""
    before = {(c.reason, c.message) for c in old.conditions}
    fresh = {(c.reason, c.message) for c in new.conditions if c.reason in WARNING_REASONS}
    for reason, message in sorted(fresh - before):
        announce("Warning", reason, message)
    if new.phase != old.phase and new.phase is not None:
        kind = "Warning" if new.phase == Phase.FAILED else "Normal"
        if kind == "Normal" or new.reason not in WARNING_REASONS:
            announce(kind, new.phase.value, _phase_message(new))


def _phase_message(status: DliBatchJobStatus) -> str:
    text = f"phase {status.phase.value if status.phase else '?'}"
    if status.batch_id:
        text += f", DLI batch {status.batch_id}"
    if status.state:
        text += f" ({status.state})"
    return text
