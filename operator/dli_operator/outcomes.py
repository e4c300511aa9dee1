"""The new status of a DliBatchJob for each thing that can happen, and the reasons it gives.

Pure, like ``reconcile.plan`` which picks the action: an intent written, a claim, a job
accepted or adopted, a job seen, cancelled, ended, refused by DLI, or blocked on something a
user must fix. Every function takes the stored status and ``now`` and returns a new status;
the driver stores it. Split from ``reconcile`` (issue 18: one concern per module).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from dli_operator.dli.models import BatchJob, BatchState
from dli_operator.resources.base import SHORT_TEXT_MAX, TEXT_MAX
from dli_operator.resources.status import (
    CONDITION_MESSAGE_MAX,
    Attempt,
    Condition,
    ConditionStatus,
    ConditionType,
    DliBatchJobStatus,
    DliTarget,
    Phase,
    Submission,
    clip,
)
from dli_operator.translate import duration_text, phase_for

# The status fields that mirror DLI's view of the current attempt (dli_02_0126).
MIRROR_FIELDS = (
    "batch_id",
    "app_id",
    "state",
    "owner",
    "proxy_user",
    "kind",
    "sc_type",
    "queue",
    "log",
    "create_time",
    "update_time",
    "duration",
)


class Reason:
    """Condition and status reasons (CamelCase, as Kubernetes requires)."""

    SUBMITTING = "Submitting"
    """Submitted=False: the submission intent is stored and the POST to DLI is under way."""
    SUBMITTED = "Submitted"
    """Submitted=True: DLI holds the current attempt (its batch id is in status)."""
    ADOPTED = "Adopted"
    """Submitted=True: after a restart, the attempt was found in DLI by its job name and adopted
    instead of posted again."""
    STARTING = "Starting"
    """Running=False: DLI is starting the job (state `starting`)."""
    RUNNING = "Running"
    """Running=True: DLI runs the job (state `running`)."""
    RECOVERING = "Recovering"
    """Running=False: DLI is recovering the job (state `recovering`)."""
    SUCCEEDED = "Succeeded"
    """Complete=True, phase Succeeded: the Spark job succeeded."""
    JOB_FAILED = "JobFailed"
    """Failed=True, phase Failed: the job ended `dead` and is not resubmitted (`autoRecovery`
    off, or `maxRetryTimes: 0`)."""
    RETRIES_EXHAUSTED = "RetriesExhausted"
    """Failed=True, phase Failed: the job ended `dead` after `maxRetryTimes` resubmissions."""
    RETRY_SCHEDULED = "RetryScheduled"
    """Running=False, phase Recovering: the attempt ended `dead`; a new one is submitted after a
    backoff (autoRecovery)."""
    SUSPENDED = "Suspended"
    """Phase Suspended: `spec.suspend` is true; the running attempt was cancelled."""
    DEADLINE_EXCEEDED = "DeadlineExceeded"
    """Failed=True, phase Failed: `activeDeadlineSeconds` passed; the DLI job was cancelled."""
    DELETED = "Deleted"
    """Phase Cancelled: the resource was deleted and the DLI job cancelled (`deletionPolicy:
    Cancel`)."""
    SUBMIT_REJECTED = "SubmitRejected"
    """Submitted=False and Failed=True: DLI refused the request for good (e.g. DLI.0001 bad
    parameter, DLI.0002 no such queue); the message carries DLI's code."""
    DLI_UNAVAILABLE = "DliUnavailable"
    """A transient DLI error (connection, timeout, 5xx, DLI.0999): retried with backoff."""
    CREDENTIALS = "CredentialsUnavailable"
    """Phase Pending: the credentials Secret (or a key in it) is missing, or there are no default
    credentials; retried until they appear. Stalled=True meanwhile."""
    POLICY_DENIED = "PolicyDenied"
    """Phase Pending: the admin's policy refuses the job's endpoint, project, namespace or Secret
    (the message names the setting); nothing is sent until the job or the policy changes.
    Stalled=True meanwhile."""
    AUTHENTICATION_FAILED = "AuthenticationFailed"
    """DLI's gateway rejected the credentials (APIG.0301 and the like); retried, so fixing the
    Secret is enough. Stalled=True meanwhile."""
    RATE_LIMITED = "RateLimited"
    """DLI throttled the call (429): retried after its Retry-After."""
    QUEUED = "WaitingForRequestSlot"
    """Phase Pending: waiting for a slot of the operator's own DLI rate limiter."""
    UNKNOWN_STATE = "UnknownState"
    """Failed=True: DLI reported a state its documentation does not name (e.g. `killed`); the
    job ends Failed with DLI's word in the message."""
    CANCEL_REFUSED = "CancelRefused"
    """Running: DLI refused a cancel while the batch runs on; retried until DLI shows it ended."""
    CANCEL_ABANDONED = "CancelAbandoned"
    """A Warning Event: the finalizer of a deleted job let go without cancelling its DLI batch
    (its credentials are gone); the Event names the batch, to cancel in DLI."""
    SETTLING = "WaitingForLateCreate"
    """Submitted=False: a create call may have reached DLI; the job is looked up by name until the
    settle period passed, and only then sent again."""


# The reasons of ``blocked`` that no retry clears: only an admin (the policy, the default
# credentials) or the job's author (its Secret, its keys) can. The job keeps retrying, but to
# kstatus it is Stalled, not Reconciling, so Flux's wait and Argo CD stop waiting (issue 19).
# The client already renewed a token once on a 401 (dli/auth.py), so AuthenticationFailed here
# means DLI rejected the keys themselves.
NEEDS_A_FIX = frozenset({Reason.CREDENTIALS, Reason.POLICY_DENIED, Reason.AUTHENTICATION_FAILED})


def current_attempt(status: DliBatchJobStatus) -> int:
    return status.attempts[-1].attempt if status.attempts else 0


# --- outcomes: the new status for each thing that can happen ------------------------------


def intended(
    status: DliBatchJobStatus,
    attempt: int,
    name: str,
    now: datetime,
    *,
    target: DliTarget,
    claim: str,
    sending: bool,
) -> DliBatchJobStatus:
    """The intent marker, stored before the POST; ``sending`` claims the attempt at once."""
    new = status.model_copy(deep=True)
    if attempt > 1:
        # The mirror shows the current attempt; earlier ones live on in ``attempts``.
        fresh = DliBatchJobStatus()
        for key in MIRROR_FIELDS:
            setattr(new, key, getattr(fresh, key))
    new.submission = Submission(
        attempt=attempt,
        job_name=name,
        requested_at=now,
        claim=claim,
        sent_at=now if sending else None,
    )
    new.target = target
    new.phase = Phase.SUBMITTING
    new.start_time = new.start_time or now
    new.reason = new.message = None
    msg = f"submitting attempt {attempt} as DLI job {name}"
    set_condition(new, ConditionType.SUBMITTED, False, Reason.SUBMITTING, msg, now)
    return new


def claimed(status: DliBatchJobStatus, claim: str, now: datetime) -> DliBatchJobStatus:
    """This process takes the attempt: from now on a create call may leave for DLI."""
    new = status.model_copy(deep=True)
    assert new.submission is not None, "only an intent can be claimed"
    new.submission.claim, new.submission.sent_at = claim, now
    return new


def may_have_been_sent(submission: Submission, *, unsent: bool) -> bool:
    """Whether a create call for this intent may have reached DLI.

    ``unsent``: this process knows its own call under the stored claim never reached DLI.
    An intent stored before claims existed (version 0.1) may have been sent.
    """
    if submission.claim is None:
        return True
    return submission.sent_at is not None and not unsent


def settled(submission: Submission, now: datetime, settle_seconds: float) -> bool:
    """Whether a create that may have been sent can no longer turn into a DLI job."""
    sent = submission.sent_at or submission.requested_at
    return now >= sent + timedelta(seconds=settle_seconds)


def settling(status: DliBatchJobStatus, now: datetime, settle_seconds: float) -> DliBatchJobStatus:
    """Say why a create that may have reached DLI is looked up instead of sent again."""
    sub = status.submission
    assert sub is not None, "only an intent settles"
    sent = sub.sent_at or sub.requested_at
    until = (sent + timedelta(seconds=settle_seconds)).isoformat(timespec="seconds")
    msg = (
        f"the create call for DLI job {sub.job_name} may have reached DLI: looking it up until "
        f"{until} before sending it again"
    )
    return blocked(status, Reason.SETTLING, msg, now)


def accepted(
    status: DliBatchJobStatus,
    remote: BatchJob,
    *,
    adopted: bool,
    now: datetime,
    auto_recovery: bool = False,
    max_retries: int = 0,
) -> DliBatchJobStatus:
    """DLI has the attempt (just created, or found after a restart): record it.

    An adopted attempt may have ended while nobody watched; a dead one is retried like any other.
    """
    sub = status.submission
    new = status.model_copy(deep=True)
    attempt = sub.attempt if sub else current_attempt(status) + 1
    new.submission = None
    new.attempts.append(
        Attempt(
            attempt=attempt,
            batch_id=_short(remote.id),
            job_name=sub.job_name if sub else _short(remote.name),
            submit_time=remote.created_at or now,
        )
    )
    reason = Reason.ADOPTED if adopted else Reason.SUBMITTED
    msg = f"DLI batch {_short(remote.id)} holds attempt {attempt}"
    set_condition(new, ConditionType.SUBMITTED, True, reason, msg, now)
    return observed(new, remote, now=now, auto_recovery=auto_recovery, max_retries=max_retries)


def observed(
    status: DliBatchJobStatus,
    remote: BatchJob,
    *,
    now: datetime,
    auto_recovery: bool,
    max_retries: int,
) -> DliBatchJobStatus:
    """Mirror what DLI says about the current attempt and derive the phase."""
    new = status.model_copy(deep=True)
    _mirror(new, remote)
    if new.attempts:
        last = new.attempts[-1]
        last.app_id, last.state = new.app_id, new.state
    if not BatchState(remote.state).known:
        # dli_02_0124 Table 7 names five states; anything else ("killed", "error") is not
        # progress we can wait for: end the attempt and show DLI's own word.
        msg = f"DLI batch {new.batch_id} is in the undocumented state {str(remote.state)!r}"
        return ended(new, Phase.FAILED, Reason.UNKNOWN_STATE, msg, now)
    phase = phase_for(remote.state)
    if phase == Phase.SUCCEEDED:
        return ended(new, Phase.SUCCEEDED, Reason.SUCCEEDED, "the Spark job succeeded", now)
    if phase == Phase.FAILED:
        return _dead(new, now, auto_recovery=auto_recovery, max_retries=max_retries)
    new.phase = phase
    running = phase == Phase.RUNNING
    set_condition(
        new, ConditionType.RUNNING, running, phase.value, f"DLI state {remote.state}", now
    )
    return new


def _dead(
    status: DliBatchJobStatus, now: datetime, *, auto_recovery: bool, max_retries: int
) -> DliBatchJobStatus:
    tail = " / ".join(line for line in status.log[-3:] if line.strip())
    detail = f"DLI batch {status.batch_id} ended dead" + (f": {tail}" if tail else "")
    if auto_recovery and status.retries < max_retries:
        new = status.model_copy(deep=True)
        new.retries += 1
        new.phase = Phase.RECOVERING
        _finish_attempt(new, Reason.JOB_FAILED, now)
        msg = f"{detail}; retry {new.retries} of {max_retries} scheduled"
        set_condition(new, ConditionType.RUNNING, False, Reason.RETRY_SCHEDULED, msg, now)
        return new
    reason = Reason.RETRIES_EXHAUSTED if auto_recovery and max_retries else Reason.JOB_FAILED
    return ended(status, Phase.FAILED, reason, detail, now)


def ended(
    status: DliBatchJobStatus, phase: Phase, reason: str, message: str, now: datetime
) -> DliBatchJobStatus:
    """A final phase (or Suspended): conditions set as batch/v1 Job sets them."""
    new = status.model_copy(deep=True)
    new.phase = phase
    new.submission = None
    if new.attempts and new.attempts[-1].finish_time is None:
        _finish_attempt(new, None if phase == Phase.SUCCEEDED else reason, now)
    set_condition(new, ConditionType.RUNNING, False, reason, message, now)
    if phase == Phase.SUSPENDED:
        return new
    new.completion_time = now
    succeeded = phase == Phase.SUCCEEDED
    set_condition(new, ConditionType.COMPLETE, succeeded, reason, message, now)
    set_condition(new, ConditionType.FAILED, not succeeded, reason, message, now)
    if not succeeded:
        new.reason, new.message = reason, clip(message, CONDITION_MESSAGE_MAX)
    return new


def suspended(status: DliBatchJobStatus, now: datetime) -> DliBatchJobStatus:
    return ended(status, Phase.SUSPENDED, Reason.SUSPENDED, "spec.suspend is true", now)


def cancelled(status: DliBatchJobStatus, reason: str, now: datetime) -> DliBatchJobStatus:
    """The operator cancelled the running attempt (never retried)."""
    if reason == Reason.SUSPENDED:
        return suspended(status, now)
    phase = Phase.CANCELLED if reason == Reason.DELETED else Phase.FAILED
    message = {Reason.DELETED: "the DliBatchJob was deleted"}.get(reason, "cancelled")
    if reason == Reason.DEADLINE_EXCEEDED:
        message = "the job exceeded activeDeadlineSeconds and was cancelled"
    return ended(status, phase, reason, message, now)


def rejected(
    status: DliBatchJobStatus, code: str, message: str, now: datetime
) -> DliBatchJobStatus:
    """DLI refused the submission for good (DLI.0001 bad parameter, DLI.0002 no queue, ...)."""
    text = f"{code}: {message}" if code else message
    new = ended(status, Phase.FAILED, Reason.SUBMIT_REJECTED, text, now)
    set_condition(new, ConditionType.SUBMITTED, False, Reason.SUBMIT_REJECTED, text, now)
    return new


def blocked(
    status: DliBatchJobStatus, reason: str, message: str, now: datetime
) -> DliBatchJobStatus:
    """An obstacle (DLI down, throttled, credentials missing): say so, keep going.

    One with a reason in ``NEEDS_A_FIX`` is a ``stall`` until the next step gets past it.
    """
    new = status.model_copy(deep=True)
    new.phase = new.phase or Phase.PENDING
    kind = _waiting_on(new)
    current = next((c for c in new.conditions if c.type == kind), None)
    state = current.status == ConditionStatus.TRUE if current else False
    set_condition(new, kind, state, reason, message, now)
    return new


def stall(status: DliBatchJobStatus) -> tuple[str, str] | None:
    """The reason and message of an unfinished job only an admin or its author can unblock.

    ``blocked`` records the obstacle on the Submitted or Running condition; the next step that
    gets past it (an intent, a poll) rewrites that condition, and the stall is gone with it.
    """
    if status.phase is None or status.phase.is_final or status.phase == Phase.SUSPENDED:
        return None
    kind = _waiting_on(status)
    current = next((c for c in status.conditions if c.type == kind), None)
    if current is None or current.reason not in NEEDS_A_FIX:
        return None
    return current.reason, current.message


def _waiting_on(status: DliBatchJobStatus) -> ConditionType:
    """The condition an obstacle shows on: Submitted until DLI holds the attempt, then Running."""
    if status.batch_id is None or status.submission is not None:
        return ConditionType.SUBMITTED
    return ConditionType.RUNNING


def _finish_attempt(status: DliBatchJobStatus, reason: str | None, now: datetime) -> None:
    if status.attempts:
        status.attempts[-1].finish_time = now
        status.attempts[-1].reason = reason


def _mirror(status: DliBatchJobStatus, remote: BatchJob) -> None:
    # DLI response fields, as dli_02_0126 names them, into the status mirror; each cut to the
    # schema's bound, so no DLI value can make the status unstorable (issue 10, item 7).
    status.batch_id = _short(remote.id)
    status.app_id = _short(remote.app_id) or status.app_id
    status.state = _short(str(remote.state))
    status.owner = _short(remote.owner) or status.owner
    status.proxy_user = _short(remote.proxy_user) or status.proxy_user
    status.kind = _short(remote.kind) or status.kind
    status.sc_type = _short(remote.sc_type) or status.sc_type
    status.queue = _short(remote.queue or remote.cluster_name) or status.queue
    status.log = [clip(line, TEXT_MAX) for line in list(remote.log)[-10:]] or status.log
    status.create_time = remote.created_at or status.create_time
    status.update_time = remote.updated_at or status.update_time
    if remote.duration is not None:
        status.duration = duration_text(remote.duration)


def _short(value: str | None) -> str | None:
    return clip(value, SHORT_TEXT_MAX) if value else value


def set_condition(
    status: DliBatchJobStatus,
    kind: ConditionType,
    value: bool,
    reason: str,
    message: str,
    now: datetime,
) -> None:
    """Set one condition; its lastTransitionTime moves only when its status flips."""
    wanted = ConditionStatus.TRUE if value else ConditionStatus.FALSE
    old = next((c for c in status.conditions if c.type == kind), None)
    since = old.last_transition_time if old and old.status == wanted else now
    condition = Condition(
        type=kind,
        status=wanted,
        reason=reason,
        message=clip(message, TEXT_MAX),
        last_transition_time=since,
    )
    status.conditions = [c for c in status.conditions if c.type != kind] + [condition]
    status.conditions.sort(key=lambda c: list(ConditionType).index(c.type))
