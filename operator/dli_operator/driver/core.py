"""The ``Driver``: one reconcile step of one DliBatchJob, composed from the driver's rooms.

The pure core (``reconcile.py``) decides; the driver performs: it resolves the DLI target and
its client, then hands the action to the room that owns it (``fence`` for a submission,
``observe`` for a running attempt, ``cancel`` for a stop) and turns DLI's and the
configuration's errors into a stored status. Steps of one object never overlap (the ledger's
lock), and every status goes through the status writer (``writer``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from pydantic import ValidationError

from dli_operator import metrics, reconcile
from dli_operator.dli import errors, retries
from dli_operator.driver import cancel, fence, observe, writer
from dli_operator.driver.context import (
    CONFLICT_RETRY_SECONDS,
    Announce,
    always,
    describe,
    final,
    utcnow,
)
from dli_operator.driver.ledger import Ledger
from dli_operator.reconcile import Reason
from dli_operator.resources.batchjob import DeletionPolicy, DliBatchJob
from dli_operator.resources.status import DliTarget
from dli_operator.runtime import ConfigurationError, Dli, Runtime

# An error status nobody can act on soon (e.g. a malformed object) is looked at again this late.
IDLE_SECONDS = 300.0


class Driver:
    """Performs reconcile steps for every DliBatchJob of this operator.

    It is also the rooms' ``Context``: they read its collaborators and delays at every use.
    """

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
        self.settle_seconds = fence.settle_seconds(settings)

    async def step(
        self,
        body: Mapping[str, Any],
        announce: Announce,
        *,
        owned: Callable[[], bool] = always,
    ) -> float | None:
        """One reconcile step; the seconds until the next one, or None once the job is final.

        ``owned`` says whether this process still holds the job (its shard owns it and it is
        not shutting down); it is checked right before any create call.
        """
        job = self._parse(body, announce)
        if job is None:
            return IDLE_SECONDS
        uid = job.metadata.uid or ""
        async with self.ledger.lock(uid):
            job = writer.freshest(self, job, body)
            deleting = uid in self.ledger.deleting or bool(
                body["metadata"].get("deletionTimestamp")
            )
            action = reconcile.plan(job, now=self.clock(), policy=self.policy, deleting=deleting)
            try:
                delay = await self._perform(job, action, announce, deleting=deleting, owned=owned)
            except writer.Conflict:
                self.ledger.written.pop(uid, None)
                delay = CONFLICT_RETRY_SECONDS
        if delay is None:
            self.ledger.forget(uid)
        return delay

    async def show_wait(self, body: Mapping[str, Any], announce: Announce, message: str) -> None:
        """Say on a job waiting in the engine's submit lane (not stepped yet) how long it may
        wait; a job that moved on meanwhile is left as it is (the write is conditional)."""
        job = self._parse(body, announce)
        if job is None:
            return
        async with self.ledger.lock(job.metadata.uid or ""):
            job = writer.freshest(self, job, body)
            if final(job.status):
                return
            new = reconcile.blocked(job.status, Reason.QUEUED, message, self.clock())
            try:
                await writer.write(self, job, new, announce)
            except writer.Conflict:
                self.ledger.written.pop(job.metadata.uid or "", None)

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
            if not await cancel.may_abandon(self, job):
                raise
            cancel.abandoned(writer.latest(self, job), exc, announce)
            delay = None
        if delay is None:
            self.ledger.forget(uid)
        return delay

    def forget(self, uid: str) -> None:
        """Drop this process's memory of a job that left it (e.g. moved to another shard).

        Call it once no step of the job runs here; the stored status stays the truth.
        """
        self.ledger.forget(uid)

    async def _finalize_steps(
        self, job: DliBatchJob, body: Mapping[str, Any], announce: Announce
    ) -> float | None:
        # At most: adopt an in-flight submission, then cancel it.
        for _ in range(3):
            async with self.ledger.lock(job.metadata.uid or ""):
                job = writer.freshest(self, job, body)
                action = reconcile.plan(job, now=self.clock(), policy=self.policy, deleting=True)
                if isinstance(action, reconcile.Nothing):
                    return None
                try:
                    delay = await self._perform(
                        job, action, announce, deleting=True, raise_errors=True
                    )
                except writer.Conflict:
                    self.ledger.written.pop(job.metadata.uid or "", None)
                    return CONFLICT_RETRY_SECONDS
                waiting = writer.freshest(self, job, body).status.submission
                if isinstance(action, reconcile.Submit) and waiting is not None:
                    return delay  # a create that may still land: wait for it
        return self.interval

    async def _perform(
        self,
        job: DliBatchJob,
        action: reconcile.Action,
        announce: Announce,
        *,
        deleting: bool,
        raise_errors: bool = False,
        owned: Callable[[], bool] = always,
    ) -> float | None:
        try:
            match action:
                case reconcile.Nothing():
                    return None if final(job.status) else self.interval
                case reconcile.Wait(until=until):
                    return max(0.5, (until - self.clock()).total_seconds())
                case reconcile.Settle(status=status):
                    await writer.write(self, job, status, announce)
                    return None if final(status) else self.interval
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
                        self.runtime.reject(dli, describe(exc)[1])  # no job retries this key
                        raise
        except ConfigurationError as exc:
            if raise_errors:
                raise
            job = writer.latest(self, job)
            new = reconcile.blocked(job.status, exc.reason, str(exc), self.clock())
            await writer.write(self, job, new, announce)
            return self.blocked_retry
        except errors.DliError as exc:
            if raise_errors:
                raise
            return await self._dli_failed(writer.latest(self, job), exc, announce)

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
                return await fence.submit(
                    self, job, action, dli, target, announce, deleting=deleting, owned=owned
                )
            case reconcile.Observe(batch_id=batch_id):
                return await observe.observe(self, job, batch_id, dli, announce)
            case reconcile.Cancel(batch_id=batch_id, reason=reason):
                return await cancel.stop(
                    self, job, batch_id, reason, dli, announce, deleting=deleting
                )
        raise AssertionError(f"unexpected action {action!r}")

    async def _dli_failed(
        self, job: DliBatchJob, exc: errors.DliError, announce: Announce
    ) -> float | None:
        now = self.clock()
        code, message = describe(exc)
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
        await writer.write(self, job, new, announce)
        return delay

    def _parse(self, body: Mapping[str, Any], announce: Announce) -> DliBatchJob | None:
        try:
            return DliBatchJob.from_body(body)
        except ValidationError as exc:
            # The CRD schema should make this impossible; say so instead of crashing.
            announce("Warning", "Malformed", f"the DliBatchJob does not parse: {exc}"[:1024])
            return None
