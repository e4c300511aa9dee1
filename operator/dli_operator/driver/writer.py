"""The status writer: every status the driver stores goes through ``write``.

Writes go directly through the status subresource, so each step is stored before the next
begins, and each is conditional on the status it was computed from (``patch_if_unchanged``).
What this process wrote is remembered in the ledger, because kopf's body can lag behind it
(``latest``, ``freshest``). Each stored transition is announced once: one Event per phase
change, and one per new error condition (``WARNING_REASONS``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import ValidationError

from dli_operator import metrics, reconcile
from dli_operator.driver.context import Announce, Context
from dli_operator.kubeapi import KubeApiError
from dli_operator.reconcile import Reason
from dli_operator.resources import gitops, health
from dli_operator.resources.batchjob import DliBatchJob
from dli_operator.resources.status import DliBatchJobStatus, Phase

PLURAL = "dlibatchjobs"
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
        # The condition GitOpsTtlRisk (resources/health.py): its Event comes with it, once.
        "TtlUnderGitOps",
    }
)


class Conflict(Exception):
    """A conditional status write found the object changed: another process acted on it.

    ``current`` is the object as the writer read it after the 409 (None: gone, or not read),
    so a caller that may write again on top of it needs no second read (fence._fresh).
    """

    def __init__(self, message: str, current: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.current = current


async def write(
    ctx: Context, job: DliBatchJob, new: DliBatchJobStatus, announce: Announce
) -> DliBatchJob:
    """Store ``new`` through the status subresource (only what changed) and announce it.

    Every write is conditional on the status it was computed from: a status computed from
    an older view (a replica that lost the job, a stale watch) can never move an attempt
    backwards; the chaos suite saw exactly that post an attempt twice (docs/reliability.md).
    """
    new.observed_generation = job.metadata.generation
    new = health.summarize(
        new, ctx.clock(), gitops_ttl_risk=gitops.job_ttl_risk(job), stalled=reconcile.stall(new)
    )
    patch = new.to_patch(since=job.status)
    if not patch:
        return job
    meta = job.metadata
    stored = await patch_if_unchanged(ctx, job, patch)
    version = _version(stored)
    if meta.uid and version is not None:
        ctx.ledger.written[meta.uid] = (version, new)
    metrics.record_transition(job, new, ctx.clock())
    _announce(job.status, new, announce)
    rv = str(version) if version is not None else None
    return job.model_copy(
        update={"status": new, "metadata": meta.model_copy(update={"resource_version": rv})}
    )


async def patch_if_unchanged(
    ctx: Context, job: DliBatchJob, patch: dict[str, Any]
) -> dict[str, Any]:
    """PATCH the status only if it is still ``job.status``; else raise Conflict.

    The resourceVersion precondition makes it atomic. It is object-wide, though, and kopf's
    own patches (finalizer, annotations) move it too: on a 409 the object is read again,
    and if only its metadata changed the patch is sent once more at the new version.
    """
    meta, kube = job.metadata, ctx.runtime.kube
    namespace = meta.namespace or ""
    version = meta.resource_version
    current = None
    for _ in range(2):
        try:
            return await kube.patch_status(namespace, meta.name, patch, resource_version=version)
        except KubeApiError as exc:
            if exc.status != 409:
                raise
        current = await kube.get_object(PLURAL, namespace, meta.name)
        stored = DliBatchJobStatus.model_validate((current or {}).get("status") or {})
        if current is None or stored.to_patch() != job.status.to_patch():
            break
        version = (current.get("metadata") or {}).get("resourceVersion")
    raise Conflict(f"{namespace}/{meta.name}: the status changed since it was read", current)


def latest(ctx: Context, job: DliBatchJob) -> DliBatchJob:
    """The job with the status this process stored last, if newer (a step may fail midway)."""
    return _mine_if_newer(ctx, job, _number(job.metadata.resource_version)) or job


def freshest(ctx: Context, job: DliBatchJob, body: Mapping[str, Any]) -> DliBatchJob:
    """The job with the newest status: kopf's body, or what this process wrote since."""
    mine = _mine_if_newer(ctx, job, _version(body))
    if mine is not None:
        return mine
    try:
        return DliBatchJob.from_body(body)
    except ValidationError:
        return job


def _mine_if_newer(ctx: Context, job: DliBatchJob, seen: int | None) -> DliBatchJob | None:
    """``job`` with the status (and version) this process wrote, if newer than ``seen``."""
    mine = ctx.ledger.written.get(job.metadata.uid or "")
    if mine is None or (seen is not None and seen >= mine[0]):
        return None
    meta = job.metadata.model_copy(update={"resource_version": str(mine[0])})
    return job.model_copy(update={"status": mine[1].model_copy(deep=True), "metadata": meta})


def _version(body: Mapping[str, Any]) -> int | None:
    return _number((body.get("metadata") or {}).get("resourceVersion"))


def _number(value: object) -> int | None:
    # resourceVersion is opaque by contract, but the apiserver hands out etcd revisions; if it
    # ever is not a number, the stored object simply always wins.
    return int(value) if isinstance(value, str) and value.isdigit() else None


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
