"""The pure core: ``plan`` rule by rule, and the status each outcome gives, by table."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from dli_operator import reconcile
from dli_operator.credentials import ConfigurationError
from dli_operator.dli.models import BatchJob
from dli_operator.reconcile import (
    Cancel,
    Nothing,
    Observe,
    Policy,
    Reason,
    Settle,
    Submit,
    Wait,
)
from dli_operator.resources.batchjob import DliBatchJob
from dli_operator.resources.status import (
    ConditionStatus,
    ConditionType,
    DliBatchJobStatus,
    DliTarget,
    Phase,
    Submission,
)
from dli_operator.translate import job_name_for

NOW = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
EARLIER = NOW - timedelta(minutes=30)
UID = "6f1c2a9e-4b7d-4c1e-9a55-0d2f7e1b3c4d"
BATCH = "0a324461-d9d9-45da-a52a-3b3c7a3d809e"
POLICY = Policy(retry_backoff_seconds=10.0, retry_backoff_max_seconds=300.0)
# 2024-05-01T11:30:00Z and 11:31:40.5Z as DLI's millisecond timestamps.
CREATE_MS = int(EARLIER.timestamp() * 1000)
UPDATE_MS = CREATE_MS + 100_500
TARGET = DliTarget(endpoint="https://dli.cn-north-4.myhuaweicloud.com", project_id="p" * 32)


def intend(status: DliBatchJobStatus, attempt: int, name: str, now: datetime) -> DliBatchJobStatus:
    """The intent of a process that claims the attempt at once (no request queue ahead)."""
    return reconcile.intended(
        status, attempt, name, now, target=TARGET, claim="c0ffee", sending=True
    )


def make_job(spec: dict[str, Any] | None = None, uid: str = UID, **status: Any) -> DliBatchJob:
    return DliBatchJob.model_validate(
        {
            "metadata": {"name": "etl", "namespace": "team", "uid": uid, "generation": 1},
            "spec": {"file": "obs://b/app.jar", "className": "a.Main", "queue": "q1"}
            | (spec or {}),
            "status": status,
        }
    )


def attempt(n: int = 1, *, finished: datetime | None = None, **extra: Any) -> dict[str, Any]:
    entry = {"attempt": n, "batchId": BATCH, "jobName": f"etl-6f1c2a9e-{n}", "submitTime": EARLIER}
    return entry | ({"finishTime": finished} if finished else {}) | extra


def running(**status: Any) -> dict[str, Any]:
    """The status of a job whose first attempt DLI is running."""
    base = {
        "phase": "Running",
        "batchId": BATCH,
        "state": "running",
        "startTime": EARLIER,
        "attempts": [attempt()],
    }
    return base | status


def recovering(finished: datetime, retries: int = 1) -> dict[str, Any]:
    """The status of a job whose attempt 1 ended dead and waits to be resubmitted."""
    return running(
        phase="Recovering",
        state="dead",
        retries=retries,
        attempts=[attempt(finished=finished, reason="JobFailed")],
    )


def remote(state: str = "running", **fields: Any) -> BatchJob:
    body = {
        "id": BATCH,
        "state": state,
        "appId": "application_1_0001",
        "name": "etl-6f1c2a9e-1",
        "owner": "alice",
        "proxyUser": "tenant",
        "kind": "batch",
        "sc_type": "A",
        "queue": "q1",
        "log": [f"line {i}" for i in range(12)],
        "create_time": CREATE_MS,
        "update_time": UPDATE_MS,
        "duration": 3_723_000,
    }
    return BatchJob.model_validate(body | fields)


def summary(action: reconcile.Action) -> tuple[Any, ...]:
    """An action as a comparable row (a Settle by the phase and reason it stores)."""
    match action:
        case Submit(attempt=n, job_name=name):
            return ("Submit", n, name)
        case Observe(batch_id=batch_id):
            return ("Observe", batch_id)
        case Cancel(batch_id=batch_id, reason=reason):
            return ("Cancel", batch_id, reason)
        case Wait(until=until):
            return ("Wait", until)
        case Settle(status=status):
            return ("Settle", status.phase, status.reason or condition(status, "Running").reason)
        case Nothing():
            return ("Nothing",)


def condition(status: DliBatchJobStatus, kind: str) -> Any:
    found = [c for c in status.conditions if c.type == kind]
    assert found, f"no {kind} condition in {status.conditions}"
    return found[0]


def due_after_first_failure() -> datetime:
    due = reconcile.retry_due(make_job(**recovering(EARLIER)), POLICY)
    assert due is not None
    return due


DEADLINE = {"activeDeadlineSeconds": 600}

PLAN_CASES = [
    pytest.param(
        make_job(phase="Succeeded", batchId=BATCH, state="success"),
        False,
        ("Nothing",),
        id="a succeeded job plans nothing",
    ),
    pytest.param(
        make_job(**running(phase="Failed", state="dead")),
        False,
        ("Nothing",),
        id="a failed job plans nothing",
    ),
    pytest.param(
        make_job(**running(phase="Cancelled")),
        True,
        ("Nothing",),
        id="a cancelled job plans nothing even while it is deleted",
    ),
    pytest.param(
        make_job({"suspend": True}, phase="Failed", startTime=EARLIER),
        False,
        ("Nothing",),
        id="a failed job plans nothing even when suspended",
    ),
    pytest.param(
        make_job(
            phase="Submitting",
            submission={"attempt": 1, "jobName": "etl-6f1c2a9e-1", "requestedAt": EARLIER},
        ),
        False,
        ("Submit", 1, "etl-6f1c2a9e-1"),
        id="an unresolved submission intent is looked up before anything else",
    ),
    pytest.param(
        make_job(
            {"suspend": True},
            phase="Submitting",
            submission={"attempt": 2, "jobName": "etl-6f1c2a9e-2", "requestedAt": EARLIER},
        ),
        True,
        ("Submit", 2, "etl-6f1c2a9e-2"),
        id="an unresolved submission is resolved first even when deleted and suspended",
    ),
    pytest.param(
        make_job(**running()),
        True,
        ("Cancel", BATCH, "Deleted"),
        id="deleting a job with a running batch cancels it",
    ),
    pytest.param(
        make_job(phase="Pending"),
        True,
        ("Nothing",),
        id="deleting a job that never reached DLI needs nothing",
    ),
    pytest.param(
        make_job(**recovering(EARLIER)),
        True,
        ("Nothing",),
        id="deleting a job between attempts needs nothing",
    ),
    pytest.param(
        make_job(DEADLINE, **running(startTime=NOW - timedelta(seconds=600))),
        False,
        ("Cancel", BATCH, "DeadlineExceeded"),
        id="a running job past activeDeadlineSeconds is cancelled",
    ),
    pytest.param(
        make_job(DEADLINE, **recovering(EARLIER)),
        False,
        ("Settle", Phase.FAILED, "DeadlineExceeded"),
        id="a job past its deadline with nothing running fails without a DLI call",
    ),
    pytest.param(
        make_job(DEADLINE, **running(startTime=NOW - timedelta(seconds=599))),
        False,
        ("Observe", BATCH),
        id="a running job one second before its deadline is observed",
    ),
    pytest.param(
        make_job({"suspend": True}, **running()),
        False,
        ("Cancel", BATCH, "Suspended"),
        id="suspending a running job cancels its batch",
    ),
    pytest.param(
        make_job({"suspend": True}),
        False,
        ("Settle", Phase.SUSPENDED, "Suspended"),
        id="a new suspended job settles as Suspended without a DLI call",
    ),
    pytest.param(
        make_job({"suspend": True}, **running(phase="Suspended")),
        False,
        ("Nothing",),
        id="an already suspended job plans nothing",
    ),
    pytest.param(
        make_job(**running()),
        False,
        ("Observe", BATCH),
        id="a job with a running batch is observed",
    ),
    pytest.param(
        make_job(**running(phase="Starting", state="starting")),
        False,
        ("Observe", BATCH),
        id="a starting batch is observed",
    ),
    pytest.param(
        make_job(),
        False,
        ("Submit", 1, "etl-6f1c2a9e-1"),
        id="a new job submits attempt one without a lookup",
    ),
    pytest.param(
        make_job(**recovering(NOW - timedelta(seconds=1))),
        False,
        ("Wait", reconcile.retry_due(make_job(**recovering(NOW - timedelta(seconds=1))), POLICY)),
        id="a recovering job waits until its retry is due",
    ),
    pytest.param(
        make_job(**recovering(EARLIER)),
        False,
        ("Submit", 2, "etl-6f1c2a9e-2"),
        id="a recovering job whose retry is due submits the next attempt",
    ),
    pytest.param(
        make_job(**running(phase="Suspended")),
        False,
        ("Submit", 2, "etl-6f1c2a9e-2"),
        id="resuming a suspended job submits the next attempt",
    ),
]


@pytest.mark.parametrize(("job", "deleting", "expected"), PLAN_CASES)
def test_plan(job: DliBatchJob, deleting: bool, expected: tuple[Any, ...]) -> None:
    action = reconcile.plan(job, now=NOW, policy=POLICY, deleting=deleting)
    assert summary(action) == expected


def test_a_recovering_job_is_resubmitted_exactly_when_its_retry_is_due() -> None:
    due = due_after_first_failure()
    job = make_job(**recovering(EARLIER))
    assert reconcile.plan(job, now=due - timedelta(microseconds=1), policy=POLICY) == Wait(due)
    assert isinstance(reconcile.plan(job, now=due, policy=POLICY), Submit)


def test_the_settled_deadline_failure_says_why_and_completes_the_job() -> None:
    action = reconcile.plan(make_job(DEADLINE, **recovering(EARLIER)), now=NOW, policy=POLICY)
    assert isinstance(action, Settle)
    status = action.status
    assert (status.phase, status.reason, status.completion_time) == (
        Phase.FAILED,
        Reason.DEADLINE_EXCEEDED,
        NOW,
    )
    assert "activeDeadlineSeconds=600" in (status.message or "")
    assert condition(status, "Failed").status == ConditionStatus.TRUE


def test_the_job_name_of_a_submission_is_the_deterministic_one() -> None:
    job = make_job({"name": "nightly"})
    action = reconcile.plan(job, now=NOW, policy=POLICY)
    assert action == Submit(1, job_name_for(job, 1))
    assert action.job_name == "nightly-6f1c2a9e-1"


# --- intended -----------------------------------------------------------------------------


def test_the_intent_marks_the_attempt_as_submitting() -> None:
    new = intend(DliBatchJobStatus(), 1, "etl-6f1c2a9e-1", NOW)
    assert new.submission is not None
    assert (new.submission.attempt, new.submission.job_name, new.submission.requested_at) == (
        1,
        "etl-6f1c2a9e-1",
        NOW,
    )
    assert (new.phase, new.start_time) == (Phase.SUBMITTING, NOW)
    submitted = condition(new, "Submitted")
    assert (submitted.status, submitted.reason) == (ConditionStatus.FALSE, Reason.SUBMITTING)
    assert "etl-6f1c2a9e-1" in submitted.message


def test_the_intent_keeps_the_start_time_of_the_first_attempt() -> None:
    job = make_job(**recovering(EARLIER))
    new = intend(job.status, 2, "etl-6f1c2a9e-2", NOW)
    assert new.start_time == EARLIER


def test_the_intent_of_a_later_attempt_clears_the_mirror_but_keeps_the_history() -> None:
    old = reconcile.observed(
        make_job(**running()).status,
        remote("dead"),
        now=EARLIER,
        auto_recovery=True,
        max_retries=3,
    )
    new = intend(old, 2, "etl-6f1c2a9e-2", NOW)
    for key in reconcile.MIRROR_FIELDS:
        assert getattr(new, key) in (None, []), key
    assert [a.batch_id for a in new.attempts] == [BATCH]
    assert new.retries == 1


def test_the_intent_of_the_first_attempt_keeps_what_was_there() -> None:
    old = DliBatchJobStatus(queue="q1", reason="CredentialsUnavailable", message="no secret")
    new = intend(old, 1, "etl-6f1c2a9e-1", NOW)
    assert new.queue == "q1"
    assert (new.reason, new.message) == (None, None)


def test_the_intent_does_not_change_the_status_it_was_given() -> None:
    old = make_job(**recovering(EARLIER)).status
    before = old.model_dump()
    intend(old, 2, "etl-6f1c2a9e-2", NOW)
    assert old.model_dump() == before


# --- accepted -----------------------------------------------------------------------------


def submitting(attempt: int = 1) -> DliBatchJobStatus:
    return intend(DliBatchJobStatus(), attempt, f"etl-6f1c2a9e-{attempt}", EARLIER)


@pytest.mark.parametrize(
    ("adopted", "reason"),
    [
        pytest.param(False, "Submitted", id="a posted job is recorded as Submitted"),
        pytest.param(True, "Adopted", id="a job found after a restart is recorded as Adopted"),
    ],
)
def test_an_accepted_job_is_recorded_as_the_attempt(adopted: bool, reason: str) -> None:
    new = reconcile.accepted(submitting(), remote("starting"), adopted=adopted, now=NOW)
    assert new.submission is None
    assert [(a.attempt, a.batch_id, a.job_name) for a in new.attempts] == [
        (1, BATCH, "etl-6f1c2a9e-1")
    ]
    assert new.attempts[0].submit_time == EARLIER
    assert (new.batch_id, new.state, new.phase) == (BATCH, "starting", Phase.STARTING)
    submitted = condition(new, "Submitted")
    assert (submitted.status, submitted.reason) == (ConditionStatus.TRUE, reason)
    assert BATCH in submitted.message


def test_an_accepted_later_attempt_is_appended_after_the_earlier_ones() -> None:
    old = intend(make_job(**recovering(EARLIER)).status, 2, "etl-6f1c2a9e-2", NOW)
    second = remote("starting", id="1b324461-d9d9-45da-a52a-3b3c7a3d809e", name="etl-6f1c2a9e-2")
    new = reconcile.accepted(old, second, adopted=False, now=NOW)
    assert [(a.attempt, a.batch_id) for a in new.attempts] == [(1, BATCH), (2, second.id)]
    assert new.batch_id == second.id
    assert new.retries == 1


@pytest.mark.parametrize(
    ("auto_recovery", "phase", "retries"),
    [
        pytest.param(True, Phase.RECOVERING, 1, id="under autoRecovery it is retried"),
        pytest.param(False, Phase.FAILED, 0, id="without autoRecovery it fails"),
    ],
)
def test_an_adopted_attempt_that_died_meanwhile_follows_the_retry_rules(
    auto_recovery: bool, phase: Phase, retries: int
) -> None:
    new = reconcile.accepted(
        submitting(),
        remote("dead"),
        adopted=True,
        now=NOW,
        auto_recovery=auto_recovery,
        max_retries=3,
    )
    assert (new.phase, new.retries, new.attempts[-1].finish_time) == (phase, retries, NOW)
    job = make_job(**new.to_patch())
    expected = Wait if auto_recovery else Nothing
    assert isinstance(reconcile.plan(job, now=NOW, policy=POLICY), expected)


# --- observed -----------------------------------------------------------------------------


def observe(state: str, *, auto_recovery: bool = False, max_retries: int = 0, **status: Any) -> Any:
    return reconcile.observed(
        make_job(**running(**status)).status,
        remote(state),
        now=NOW,
        auto_recovery=auto_recovery,
        max_retries=max_retries,
    )


@pytest.mark.parametrize(
    ("state", "phase", "running_condition"),
    [
        pytest.param("starting", Phase.STARTING, "False", id="starting is the Starting phase"),
        pytest.param("running", Phase.RUNNING, "True", id="running is the Running phase"),
        pytest.param(
            "recovering", Phase.RECOVERING, "False", id="recovering is the Recovering phase"
        ),
    ],
)
def test_an_unfinished_state_is_mirrored_and_not_final(
    state: str, phase: Phase, running_condition: str
) -> None:
    new = observe(state)
    assert (new.phase, new.state) == (phase, state)
    assert not new.phase.is_final
    assert new.completion_time is None
    assert condition(new, "Running").status == running_condition
    assert new.attempts[-1].state == state


# A blank state is no state at all: the client refuses it as a protocol error (retried), as
# it does a null one (tests/client/test_hostile_replies.py), so it never reaches reconcile.
@pytest.mark.parametrize("state", ["Queued", "killed", "error"])
def test_an_undocumented_state_ends_the_job_as_failed_with_the_raw_state(state: str) -> None:
    new = observe(state)
    assert (new.phase, new.reason) == (Phase.FAILED, "UnknownState")
    assert repr(state) in (new.message or "")
    assert new.retries == 0, "an undocumented state is never resubmitted: DLI may still run it"


def test_every_mirror_field_is_copied_from_dli() -> None:
    new = observe("running")
    patch = new.to_patch()
    assert {k: patch[k] for k in ("batchId", "appId", "state", "owner", "proxyUser")} == {
        "batchId": BATCH,
        "appId": "application_1_0001",
        "state": "running",
        "owner": "alice",
        "proxyUser": "tenant",
    }
    assert (patch["kind"], patch["scType"], patch["queue"]) == ("batch", "A", "q1")
    assert patch["log"] == [f"line {i}" for i in range(2, 12)]
    assert patch["createTime"] == "2024-05-01T11:30:00Z"
    assert patch["updateTime"] == "2024-05-01T11:31:40.500000Z"
    assert patch["duration"] == "1h2m3s"
    assert new.attempts[-1].app_id == "application_1_0001"


def test_a_legacy_cluster_name_fills_the_queue_column() -> None:
    new = reconcile.observed(
        make_job(**running(queue=None)).status,
        remote("running", queue=None, cluster_name="legacy_q"),
        now=NOW,
        auto_recovery=False,
        max_retries=0,
    )
    assert new.queue == "legacy_q"


def test_a_missing_field_in_the_answer_keeps_what_the_status_knew() -> None:
    bare = BatchJob.model_validate({"id": BATCH, "state": "running"})
    old = observe("running")
    new = reconcile.observed(old, bare, now=NOW, auto_recovery=False, max_retries=0)
    assert (new.app_id, new.owner, new.create_time, new.log) == (
        old.app_id,
        old.owner,
        old.create_time,
        old.log,
    )


def test_a_successful_job_completes_as_a_batch_job_does() -> None:
    new = observe("success")
    assert (new.phase, new.completion_time, new.reason) == (Phase.SUCCEEDED, NOW, None)
    assert condition(new, "Complete").status == ConditionStatus.TRUE
    assert condition(new, "Failed").status == ConditionStatus.FALSE
    assert condition(new, "Running").status == ConditionStatus.FALSE
    assert new.attempts[-1].finish_time == NOW
    assert new.attempts[-1].reason is None


@pytest.mark.parametrize(
    ("auto_recovery", "retries", "max_retries", "phase", "reason"),
    [
        pytest.param(True, 0, 3, Phase.RECOVERING, None, id="the first death is retried"),
        pytest.param(True, 2, 3, Phase.RECOVERING, None, id="the last allowed retry is taken"),
        pytest.param(
            True, 3, 3, Phase.FAILED, "RetriesExhausted", id="no retry is left after the max"
        ),
        pytest.param(
            True, 0, 0, Phase.FAILED, "JobFailed", id="maxRetryTimes zero means never retried"
        ),
        pytest.param(
            False, 0, 20, Phase.FAILED, "JobFailed", id="without autoRecovery a death is final"
        ),
    ],
)
def test_a_dead_attempt_is_retried_only_under_auto_recovery_within_the_budget(
    auto_recovery: bool, retries: int, max_retries: int, phase: Phase, reason: str | None
) -> None:
    new = observe("dead", auto_recovery=auto_recovery, max_retries=max_retries, retries=retries)
    assert (new.phase, new.reason) == (phase, reason)
    assert new.attempts[-1].finish_time == NOW
    ended_because = "JobFailed" if phase == Phase.RECOVERING else reason
    assert new.attempts[-1].reason == ended_because
    if phase == Phase.RECOVERING:
        assert new.retries == retries + 1
        assert new.completion_time is None
        assert condition(new, "Running").reason == "RetryScheduled"
        assert f"retry {retries + 1} of {max_retries}" in condition(new, "Running").message
        assert ConditionType.FAILED not in {c.type for c in new.conditions}
    else:
        assert new.retries == retries
        assert new.completion_time == NOW
        failed = condition(new, "Failed")
        assert (failed.status, failed.reason) == (ConditionStatus.TRUE, reason)
        assert condition(new, "Complete").status == ConditionStatus.FALSE


def test_a_dead_job_names_the_batch_and_the_end_of_its_log() -> None:
    new = observe("dead")
    assert new.message == f"DLI batch {BATCH} ended dead: line 9 / line 10 / line 11"


# --- ended and cancelled ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("reason", "phase", "final"),
    [
        pytest.param("Suspended", Phase.SUSPENDED, False, id="a suspend holds the job"),
        pytest.param("DeadlineExceeded", Phase.FAILED, True, id="a deadline cancel fails the job"),
        pytest.param("Deleted", Phase.CANCELLED, True, id="a delete cancels the job"),
    ],
)
def test_a_cancel_by_the_operator_ends_the_attempt(reason: str, phase: Phase, final: bool) -> None:
    new = reconcile.cancelled(make_job(**running()).status, reason, NOW)
    assert new.phase == phase
    assert (new.attempts[-1].finish_time, new.attempts[-1].reason) == (NOW, reason)
    assert condition(new, "Running").status == ConditionStatus.FALSE
    assert new.retries == 0
    if final:
        assert new.completion_time == NOW
        assert (new.reason, condition(new, "Failed").reason) == (reason, reason)
        assert condition(new, "Failed").status == ConditionStatus.TRUE
    else:
        assert new.completion_time is None
        assert new.reason is None
        assert {c.type for c in new.conditions} == {ConditionType.RUNNING}


def test_a_suspended_job_resumes_as_a_new_attempt_not_a_retry() -> None:
    held = reconcile.cancelled(make_job(**running()).status, Reason.SUSPENDED, NOW)
    job = make_job(**held.to_patch())
    assert reconcile.active_batch(job.status) is None
    assert reconcile.plan(job, now=NOW, policy=POLICY) == Submit(2, "etl-6f1c2a9e-2")


def test_ending_drops_an_intent_that_was_never_sent() -> None:
    new = reconcile.cancelled(submitting(), Reason.DELETED, NOW)
    assert (new.submission, new.phase) == (None, Phase.CANCELLED)


def test_ending_keeps_the_finish_time_of_an_attempt_that_already_ended() -> None:
    job = make_job(**recovering(EARLIER))
    new = reconcile.ended(job.status, Phase.FAILED, Reason.DEADLINE_EXCEEDED, "late", NOW)
    assert (new.attempts[-1].finish_time, new.attempts[-1].reason) == (EARLIER, "JobFailed")


# --- rejected and blocked -----------------------------------------------------------------


def test_a_rejected_submission_fails_with_the_dli_code_in_the_message() -> None:
    new = reconcile.rejected(submitting(), "DLI.0002", "There is no queue named nope", NOW)
    text = "DLI.0002: There is no queue named nope"
    assert (new.phase, new.reason, new.message) == (Phase.FAILED, "SubmitRejected", text)
    assert new.submission is None
    submitted = condition(new, "Submitted")
    assert (submitted.status, submitted.reason, submitted.message) == (
        ConditionStatus.FALSE,
        "SubmitRejected",
        text,
    )
    assert (condition(new, "Failed").status, condition(new, "Failed").message) == ("True", text)


def test_a_rejection_without_a_code_keeps_the_bare_message() -> None:
    new = reconcile.rejected(submitting(), "", "refused", NOW)
    assert new.message == "refused"


def test_a_blocked_new_job_is_pending_with_the_obstacle_on_submitted() -> None:
    new = reconcile.blocked(DliBatchJobStatus(), Reason.CREDENTIALS, "no Secret team/dli", NOW)
    assert new.phase == Phase.PENDING
    submitted = condition(new, "Submitted")
    assert (submitted.status, submitted.reason, submitted.message) == (
        ConditionStatus.FALSE,
        "CredentialsUnavailable",
        "no Secret team/dli",
    )
    assert not new.phase.is_final


def test_a_blocked_running_job_keeps_its_phase_and_running_condition() -> None:
    old = observe("running")
    new = reconcile.blocked(old, Reason.DLI_UNAVAILABLE, "DLI.0999: try later", NOW)
    assert new.phase == Phase.RUNNING
    running_condition = condition(new, "Running")
    assert (running_condition.status, running_condition.reason) == ("True", "DliUnavailable")
    assert running_condition.last_transition_time == condition(old, "Running").last_transition_time
    assert ConditionType.SUBMITTED not in {c.type for c in new.conditions}


def test_a_blocked_intent_reports_on_submitted_even_with_an_old_batch_id() -> None:
    old = intend(make_job(**recovering(EARLIER)).status, 2, "etl-6f1c2a9e-2", NOW)
    old.batch_id = BATCH
    new = reconcile.blocked(old, Reason.AUTHENTICATION_FAILED, "APIG.0301: bad signature", NOW)
    assert condition(new, "Submitted").reason == "AuthenticationFailed"
    assert new.phase == Phase.SUBMITTING


# --- stall: what only an admin or the job's author can fix (issue 19) ------------------------

NEW_JOB = DliBatchJobStatus()


def blocked_by(reason: str, status: DliBatchJobStatus = NEW_JOB) -> DliBatchJobStatus:
    return reconcile.blocked(status, reason, f"because {reason}", NOW)


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        pytest.param(
            blocked_by(Reason.POLICY_DENIED),
            ("PolicyDenied", "because PolicyDenied"),
            id="a job the policy refuses is stalled",
        ),
        pytest.param(
            blocked_by(Reason.CREDENTIALS),
            ("CredentialsUnavailable", "because CredentialsUnavailable"),
            id="a job whose Secret or key is missing is stalled",
        ),
        pytest.param(
            blocked_by(Reason.AUTHENTICATION_FAILED, submitting()),
            ("AuthenticationFailed", "because AuthenticationFailed"),
            id="a job whose keys DLI rejected is stalled",
        ),
        pytest.param(
            blocked_by(Reason.CREDENTIALS, observe("running")),
            ("CredentialsUnavailable", "because CredentialsUnavailable"),
            id="a running job that lost its Secret is stalled on its Running condition",
        ),
        pytest.param(
            blocked_by(Reason.POLICY_DENIED, make_job(**recovering(EARLIER)).status),
            ("PolicyDenied", "because PolicyDenied"),
            id="a retry the policy refuses is stalled",
        ),
        pytest.param(blocked_by(Reason.DLI_UNAVAILABLE), None, id="DLI down is not a stall"),
        pytest.param(blocked_by(Reason.RATE_LIMITED), None, id="throttling is not a stall"),
        pytest.param(blocked_by(Reason.QUEUED), None, id="a rate-limiter wait is not a stall"),
        pytest.param(
            blocked_by(Reason.CANCEL_REFUSED, observe("running")),
            None,
            id="a refused cancel is not a stall",
        ),
        pytest.param(submitting(), None, id="a job being submitted is not stalled"),
        pytest.param(observe("running"), None, id="a running job is not stalled"),
        pytest.param(
            intend(blocked_by(Reason.POLICY_DENIED), 1, "etl-6f1c2a9e-1", NOW),
            None,
            id="the intent written once the policy admits the job ends the stall",
        ),
        pytest.param(
            intend(
                blocked_by(Reason.POLICY_DENIED, make_job(**recovering(EARLIER)).status),
                2,
                "etl-6f1c2a9e-2",
                NOW,
            ),
            None,
            id="the intent of an admitted retry ends the stall its Running condition showed",
        ),
        pytest.param(
            reconcile.observed(
                blocked_by(Reason.CREDENTIALS, observe("running")),
                remote("running"),
                now=NOW,
                auto_recovery=False,
                max_retries=0,
            ),
            None,
            id="a poll that gets through once the Secret is back ends the stall",
        ),
        pytest.param(
            reconcile.suspended(blocked_by(Reason.CREDENTIALS), NOW),
            None,
            id="a suspended job is not stalled",
        ),
        pytest.param(
            reconcile.ended(
                blocked_by(Reason.POLICY_DENIED), Phase.FAILED, Reason.DEADLINE_EXCEEDED, "x", NOW
            ),
            None,
            id="a finished job is not a stall: its phase says Failed already",
        ),
    ],
)
def test_a_job_stalls_only_on_what_no_retry_can_fix(
    status: DliBatchJobStatus, expected: tuple[str, str] | None
) -> None:
    assert reconcile.stall(status) == expected


def test_every_configuration_error_the_driver_reports_stalls_the_job() -> None:
    # The driver turns each ConfigurationError into ``blocked(exc.reason)`` (driver/core.py):
    # a new kind of it must not read as progress to kstatus.
    kinds = [ConfigurationError, *ConfigurationError.__subclasses__()]
    assert {kind.reason for kind in kinds} == reconcile.NEEDS_A_FIX


# --- set_condition ------------------------------------------------------------------------


def test_a_condition_moves_its_transition_time_only_when_it_flips() -> None:
    status = DliBatchJobStatus()
    t1, t2, t3 = NOW, NOW + timedelta(seconds=10), NOW + timedelta(seconds=20)
    reconcile.set_condition(status, ConditionType.RUNNING, True, "Running", "a", t1)
    reconcile.set_condition(status, ConditionType.RUNNING, True, "DliUnavailable", "b", t2)
    same = condition(status, "Running")
    assert (same.last_transition_time, same.reason, same.message) == (t1, "DliUnavailable", "b")
    reconcile.set_condition(status, ConditionType.RUNNING, False, "Succeeded", "c", t3)
    flipped = condition(status, "Running")
    assert (flipped.status, flipped.last_transition_time) == (ConditionStatus.FALSE, t3)
    assert len(status.conditions) == 1


def test_conditions_are_kept_in_a_fixed_order() -> None:
    status = DliBatchJobStatus()
    for kind in reversed(ConditionType):
        reconcile.set_condition(status, kind, False, "Why", "", NOW)
    assert [c.type for c in status.conditions] == list(ConditionType)


def test_a_condition_message_is_cut_to_the_kubernetes_limit() -> None:
    status = DliBatchJobStatus()
    reconcile.set_condition(status, ConditionType.FAILED, True, "JobFailed", "x" * 10_000, NOW)
    assert len(condition(status, "Failed").message) == 4096


# --- retry_due ----------------------------------------------------------------------------

UIDS = [f"{i:08x}-0000-4000-8000-000000000000" for i in range(40)]


@pytest.mark.parametrize(
    ("retries", "delay"),
    [
        pytest.param(1, 10.0, id="the first retry waits about the base backoff"),
        pytest.param(2, 20.0, id="the second retry waits about twice as long"),
        pytest.param(4, 80.0, id="the fourth retry waits about eight times as long"),
        pytest.param(6, 300.0, id="a late retry waits at most the cap"),
        pytest.param(30, 300.0, id="a very late retry still waits at most the cap"),
    ],
)
def test_the_retry_delay_is_exponential_capped_and_jittered_down_by_at_most_a_quarter(
    retries: int, delay: float
) -> None:
    waits = []
    for uid in UIDS:
        due = reconcile.retry_due(make_job(uid=uid, **recovering(EARLIER, retries)), POLICY)
        assert due is not None
        waits.append((due - EARLIER).total_seconds())
    assert all(0.75 * delay <= w <= delay for w in waits), waits
    assert len(set(waits)) > 10, "the jitter spreads jobs out"


def test_the_retry_time_is_the_same_after_a_restart() -> None:
    job = make_job(**recovering(EARLIER, 2))
    again = make_job(**job.status.to_patch())
    assert reconcile.retry_due(job, POLICY) == reconcile.retry_due(again, POLICY)


def test_no_retry_is_due_before_an_attempt_has_ended() -> None:
    assert reconcile.retry_due(make_job(**running()), POLICY) is None
    assert reconcile.retry_due(make_job(), POLICY) is None


def test_a_zero_backoff_resubmits_at_once() -> None:
    policy = Policy(retry_backoff_seconds=0.0, retry_backoff_max_seconds=0.0)
    assert reconcile.retry_due(make_job(**recovering(EARLIER)), policy) == EARLIER


# --- the fenced claim (issue 10) -----------------------------------------------------------

SETTLE = 100.0


def submission(**fields: Any) -> Submission:
    values: dict[str, Any] = {"attempt": 1, "job_name": "etl-6f1c2a9e-1", "requested_at": EARLIER}
    return Submission(**(values | fields))


@pytest.mark.parametrize(
    ("sub", "unsent", "sent"),
    [
        pytest.param(submission(claim="a"), False, False, id="an unclaimed intent was never sent"),
        pytest.param(
            submission(claim="a", sent_at=NOW), False, True, id="a claim may have been sent"
        ),
        pytest.param(
            submission(claim="a", sent_at=NOW), True, False, id="a claim whose call never connected"
        ),
        pytest.param(submission(), False, True, id="an intent from 0.1 may have been sent"),
    ],
)
def test_whether_an_intent_may_have_reached_dli(sub: Submission, unsent: bool, sent: bool) -> None:
    assert reconcile.may_have_been_sent(sub, unsent=unsent) is sent


@pytest.mark.parametrize(
    ("sent_at", "now", "done"),
    [
        pytest.param(NOW, NOW + timedelta(seconds=SETTLE - 1), False, id="inside the settle"),
        pytest.param(NOW, NOW + timedelta(seconds=SETTLE), True, id="once it passed"),
        pytest.param(None, EARLIER + timedelta(seconds=SETTLE), True, id="0.1: from the request"),
    ],
)
def test_a_create_that_may_have_been_sent_settles_after_the_settle_period(
    sent_at: datetime | None, now: datetime, done: bool
) -> None:
    assert reconcile.settled(submission(sent_at=sent_at), now, SETTLE) is done


def test_a_claim_stores_the_token_and_when_the_call_may_leave() -> None:
    old = intend(DliBatchJobStatus(), 1, "etl-6f1c2a9e-1", EARLIER)
    new = reconcile.claimed(old, "beef", NOW)
    assert new.submission is not None
    assert (new.submission.claim, new.submission.sent_at) == ("beef", NOW)
    assert old.submission is not None
    assert old.submission.claim == "c0ffee"


def test_releasing_a_claim_is_a_merge_patch_that_deletes_sent_at() -> None:
    old = intend(DliBatchJobStatus(), 1, "etl-6f1c2a9e-1", NOW)
    new = old.model_copy(deep=True)
    assert new.submission is not None
    new.submission.sent_at = None
    assert new.to_patch(since=old) == {"submission": {"sentAt": None}}


def test_dli_values_longer_than_the_schema_allows_are_cut_before_the_write() -> None:
    remote = BatchJob.model_validate(
        {"id": BATCH, "state": "dead", "appId": "a" * 999, "log": ["x" * 99_999]}
    )
    new = reconcile.observed(
        DliBatchJobStatus(), remote, now=NOW, auto_recovery=False, max_retries=0
    )
    patch = new.to_patch()
    assert len(patch["appId"]) == 256
    assert len(patch["log"][0]) == 4096
