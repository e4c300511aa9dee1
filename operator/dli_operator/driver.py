"""Drives one DliBatchJob one step at a time: plan, call DLI, store the status.

The pure core (``reconcile.py``) decides; this module performs: it resolves credentials, waits
for a rate-limit slot, calls DLI, and writes the status directly through the status
subresource, so each step is stored before the next begins. That ordering is what makes a
submission exactly-once: the intent is stored before the POST, and a stored intent without a
batch id is looked up in DLI (and adopted) rather than posted again (DESIGN.md, Behaviour).

Per-process memory (``Ledger``) serialises steps per object, remembers statuses this process
wrote (kopf's body can lag behind them), and the intents it stored but never sent, which need
no lookup. Losing it (a crash) is always safe: the stored status is the source of truth.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from pydantic import ValidationError

from dli_operator import metrics, reconcile
from dli_operator.dli import errors, retries
from dli_operator.dli.models import BatchJob, is_terminal
from dli_operator.reconcile import Reason
from dli_operator.resources import gitops, health
from dli_operator.resources.batchjob import DeletionPolicy, DliBatchJob
from dli_operator.resources.status import DliBatchJobStatus, Phase
from dli_operator.runtime import ConfigurationError, Dli, Runtime
from dli_operator.translate import to_request

logger = logging.getLogger(__name__)

Announce = Callable[[str, str, str], None]
"""``announce(type, reason, message)``: post a Kubernetes Event on the job."""

# An error status nobody can act on soon (e.g. a malformed object) is looked at again this late.
IDLE_SECONDS = 300.0
# A submission expected to wait at least this long for a rate-limit slot says so in its status.
QUEUE_NOTICE_SECONDS = 2.0
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
        Reason.AUTHENTICATION_FAILED,
        Reason.RATE_LIMITED,
    }
)


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass
class Ledger:
    """What this process knows beyond the stored objects; all of it may be lost safely."""

    locks: dict[str, asyncio.Lock] = field(default_factory=dict)
    written: dict[str, tuple[int, DliBatchJobStatus]] = field(default_factory=dict)
    unposted: set[tuple[str, int]] = field(default_factory=set)
    deleting: set[str] = field(default_factory=set)

    def lock(self, uid: str) -> asyncio.Lock:
        return self.locks.setdefault(uid, asyncio.Lock())

    def forget(self, uid: str) -> None:
        self.locks.pop(uid, None)
        self.written.pop(uid, None)
        self.deleting.discard(uid)
        self.unposted = {k for k in self.unposted if k[0] != uid}


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
        self.interval = runtime.settings.reconcile.poll_interval_seconds
        self.error_backoff = runtime.settings.reconcile.error_backoff_seconds
        self.blocked_retry = runtime.settings.reconcile.blocked_retry_seconds

    async def step(self, body: Mapping[str, Any], announce: Announce) -> float | None:
        """One reconcile step; the seconds until the next one, or None once the job is final."""
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
            delay = await self._perform(job, action, announce, deleting=deleting)
        if delay is None:
            self.ledger.written.pop(uid, None)
        return delay

    async def finalize(self, body: Mapping[str, Any], announce: Announce) -> None:
        """On deletion: cancel the running attempt unless ``deletionPolicy: Orphan``."""
        job = self._parse(body, announce)
        if job is None:
            return
        uid = job.metadata.uid or ""
        self.ledger.deleting.add(uid)
        if job.spec.deletion_policy == DeletionPolicy.ORPHAN:
            self._forget(uid)
            return
        # At most: adopt an in-flight submission, then cancel it.
        for _ in range(3):
            async with self.ledger.lock(uid):
                job = self._freshest(job, body)
                action = reconcile.plan(job, now=self.clock(), policy=self.policy, deleting=True)
                if isinstance(action, reconcile.Nothing):
                    break
                await self._perform(job, action, announce, deleting=True, raise_errors=True)
                job = self._freshest(job, body)
        self._forget(uid)

    def _forget(self, uid: str) -> None:
        self.ledger.forget(uid)

    # --- actions ----------------------------------------------------------------------------

    async def _perform(
        self,
        job: DliBatchJob,
        action: reconcile.Action,
        announce: Announce,
        *,
        deleting: bool,
        raise_errors: bool = False,
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
                    dli = await self.runtime.dli_for(job.metadata.namespace or "", job.spec)
                    try:
                        return await self._remote(job, action, dli, announce, deleting=deleting)
                    except errors.DliThrottled as exc:
                        dli.limiter.pause(exc.retry_after)  # everyone waits, not just this job
                        raise
        except ConfigurationError as exc:
            if raise_errors:
                raise
            job = self._latest(job)
            new = reconcile.blocked(job.status, Reason.CREDENTIALS, str(exc), self.clock())
            await self._write(job, new, announce)
            return self.blocked_retry
        except errors.DliError as exc:
            if raise_errors:
                raise
            return await self._dli_failed(self._latest(job), exc, announce)

    async def _remote(
        self,
        job: DliBatchJob,
        action: reconcile.Action,
        dli: Dli,
        announce: Announce,
        *,
        deleting: bool,
    ) -> float | None:
        match action:
            case reconcile.Submit():
                return await self._submit(job, action, dli, announce, deleting=deleting)
            case reconcile.Observe(batch_id=batch_id):
                return await self._observe(job, batch_id, dli, announce)
            case reconcile.Cancel(batch_id=batch_id, reason=reason):
                await self._cancel(dli, batch_id)
                new = reconcile.cancelled(job.status, reason, self.clock())
                await self._write(job, new, announce)
                return None if _final(new) else self.interval
        raise AssertionError(f"unexpected action {action!r}")

    async def _submit(
        self,
        job: DliBatchJob,
        action: reconcile.Submit,
        dli: Dli,
        announce: Announce,
        *,
        deleting: bool,
    ) -> float | None:
        uid, attempt = job.metadata.uid or "", action.attempt
        if job.status.submission is None:
            # The intent is stored, synchronously, before anything is sent to DLI.
            new = reconcile.intended(job.status, attempt, action.job_name, self.clock())
            job = await self._write(job, new, announce)
            self.ledger.unposted.add((uid, attempt))
        elif (uid, attempt) not in self.ledger.unposted:
            found = await self._find(job, action.job_name, dli)
            if found is not None:
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
        if deleting or job.spec.suspend:
            # Nothing was sent for this intent: drop it instead of submitting.
            reason = Reason.DELETED if deleting else Reason.SUSPENDED
            new = reconcile.cancelled(job.status, reason, self.clock())
            await self._write(job, new, announce)
            return None if _final(new) else self.interval
        return await self._post(job, action, dli, announce)

    async def _post(
        self, job: DliBatchJob, action: reconcile.Submit, dli: Dli, announce: Announce
    ) -> float | None:
        uid, attempt = job.metadata.uid or "", action.attempt
        request = to_request(job.spec, job_name=action.job_name)
        job = await self._wait_turn(job, dli, announce)
        # From here DLI may get the job, even if this task is cancelled mid-call: any later step
        # (or the finalizer) looks it up before posting again or dropping the intent.
        self.ledger.unposted.discard((uid, attempt))
        try:
            created = await dli.client.create_batch(request)
        except errors.DliError as exc:
            if _provably_not_created(exc):
                self.ledger.unposted.add((uid, attempt))
            raise
        metrics.SUBMISSIONS.labels("posted").inc()
        new = reconcile.accepted(job.status, created, adopted=False, now=self.clock())
        await self._write(job, new, announce)
        return self.interval

    async def _wait_turn(self, job: DliBatchJob, dli: Dli, announce: Announce) -> DliBatchJob:
        """Wait for a DLI request slot; a long wait is shown on the job first."""
        expected = dli.limiter.expected_wait()
        if expected >= QUEUE_NOTICE_SECONDS:
            ahead = dli.limiter.waiting
            msg = f"waiting for a DLI request slot: about {expected:.0f}s, {ahead} requests ahead"
            new = reconcile.blocked(job.status, Reason.QUEUED, msg, self.clock())
            job = await self._write(job, new, announce)
        await dli.limiter.acquire()
        return job

    async def _find(self, job: DliBatchJob, name: str, dli: Dli) -> BatchJob | None:
        """The DLI job of a stored intent, if the POST reached DLI before we lost track."""
        sub = job.status.submission
        window = timedelta(seconds=self.runtime.settings.reconcile.adopt_window_seconds)
        since = (sub.requested_at if sub else self.clock()) - window
        queue = job.spec.queue
        async for remote in dli.client.iter_batches(
            job_name=name,
            queue_name=queue,
            cluster_name=None if queue else job.spec.cluster_name,
            start=since,
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
        if is_terminal(remote.state):
            dli.cache.forget(queue, batch_id)
        await self._write(job, new, announce)
        return None if _final(new) else self.interval

    async def _cancel(self, dli: Dli, batch_id: str) -> None:
        await dli.limiter.acquire(urgent=True)
        try:
            await dli.client.cancel_batch(batch_id)
        except (errors.DliNotFound, errors.DliClientError) as exc:
            # Already finished or unknown to DLI: nothing left to cancel (Terraform does the
            # same: any 400 from a finished batch counts as gone).
            if isinstance(exc, errors.DliAuthError | errors.DliThrottled):
                raise
            logger.info("DLI batch %s needs no cancel: %s", batch_id, exc)

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
        """Store ``new`` through the status subresource (only what changed) and announce it."""
        new.observed_generation = job.metadata.generation
        new = health.summarize(new, self.clock(), gitops_ttl_risk=gitops.job_ttl_risk(job))
        patch = new.to_patch(since=job.status)
        if not patch:
            return job
        meta = job.metadata
        stored = await self.runtime.kube.patch_status(meta.namespace or "", meta.name, patch)
        version = _version(stored)
        if meta.uid and version is not None:
            self.ledger.written[meta.uid] = (version, new)
        _announce(job.status, new, announce)
        return job.model_copy(update={"status": new})

    def _latest(self, job: DliBatchJob) -> DliBatchJob:
        """The job with the status this process stored last (a step may fail midway)."""
        mine = self.ledger.written.get(job.metadata.uid or "")
        return job.model_copy(update={"status": mine[1].model_copy(deep=True)}) if mine else job

    def _freshest(self, job: DliBatchJob, body: Mapping[str, Any]) -> DliBatchJob:
        """The job with the newest status: kopf's body, or what this process wrote since."""
        uid = job.metadata.uid or ""
        mine = self.ledger.written.get(uid)
        seen = _version(body)
        if mine and (seen is None or mine[0] > seen):
            return job.model_copy(update={"status": mine[1].model_copy(deep=True)})
        try:
            return DliBatchJob.from_body(body)
        except ValidationError:
            return job

    def _parse(self, body: Mapping[str, Any], announce: Announce) -> DliBatchJob | None:
        try:
            return DliBatchJob.from_body(body)
        except ValidationError as exc:
            # The CRD schema should make this impossible; say so instead of crashing.
            announce("Warning", "Malformed", f"the DliBatchJob does not parse: {exc}"[:1024])
            return None


def _final(status: DliBatchJobStatus) -> bool:
    return status.phase is not None and status.phase.is_final


def _recovery(job: DliBatchJob) -> tuple[bool, int]:
    """Whether a dead attempt is resubmitted, and at most how many times."""
    limit = job.spec.max_retry_times
    return bool(job.spec.auto_recovery), (
        reconcile.DEFAULT_MAX_RETRY_TIMES if limit is None else limit
    )


def _version(body: Mapping[str, Any]) -> int | None:
    # resourceVersion is opaque by contract, but the apiserver hands out etcd revisions; if it
    # ever is not a number, the stored object simply always wins.
    value = (body.get("metadata") or {}).get("resourceVersion")
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
