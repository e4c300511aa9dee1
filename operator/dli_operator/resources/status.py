"""The DliBatchJob status: a mirror of what DLI returned, plus what Kubernetes tools read.

Two state vocabularies never mix: ``state`` is DLI's raw word (dli_02_0124 Table 7), ``phase`` is
ours (``translate.phase_for`` is the one bridge). Lists are bounded here, by trimming, so the
operator can append freely and a status patch never breaks the CRD's maxItems.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from pydantic import AwareDatetime, Field, field_validator

from dli_operator.resources.base import SHORT_TEXT_MAX, TEXT_MAX, CamelModel, Text, model_patch

# DLI returns "the last 10 records" of the log (dli_02_0124, response `log`).
LOG_LINES_MAX = 10
# One entry per submission; maxRetryTimes allows 101 attempts, the history keeps the newest.
ATTEMPTS_MAX = 20
# Kubernetes' metav1.Condition message limit.
CONDITION_MESSAGE_MAX = 32768


def clip(text: str, limit: int) -> str:
    """``text`` cut to ``limit`` characters: a DLI value must never make a status unstorable."""
    return text if len(text) <= limit else text[: limit - 3] + "..."


class Phase(StrEnum):
    """Where the job is, in our words (DESIGN.md Status)."""

    PENDING = "Pending"
    SUBMITTING = "Submitting"
    STARTING = "Starting"
    RUNNING = "Running"
    RECOVERING = "Recovering"
    SUSPENDED = "Suspended"
    SUCCEEDED = "Succeeded"
    FAILED = "Failed"
    CANCELLED = "Cancelled"

    @property
    def is_final(self) -> bool:
        """A final phase is never polled again."""
        return self in FINAL_PHASES


FINAL_PHASES = frozenset({Phase.SUCCEEDED, Phase.FAILED, Phase.CANCELLED})


class ConditionType(StrEnum):
    """Condition types; ``Complete``/``Failed`` mean what they mean for a batch/v1 Job.

    ``Ready``, ``Reconciling`` and ``Stalled`` are kstatus's (sigs.k8s.io/cli-utils), which Flux's
    ``wait: true``, kpt and Config Sync read: ``summarize`` derives them from the phase.
    ``GitOpsTtlRisk`` warns that a Git-managed job with a TTL comes back after it is deleted.
    """

    SUBMITTED = "Submitted"
    RUNNING = "Running"
    COMPLETE = "Complete"
    FAILED = "Failed"
    READY = "Ready"
    RECONCILING = "Reconciling"
    STALLED = "Stalled"
    GITOPS_TTL_RISK = "GitOpsTtlRisk"


class ConditionStatus(StrEnum):
    TRUE = "True"
    FALSE = "False"
    UNKNOWN = "Unknown"


class Condition(CamelModel):
    """A Kubernetes condition (metav1.Condition shape), so kubectl wait and kstatus read it."""

    type: ConditionType = Field(
        description="Submitted, Running, Complete, Failed; Ready, Reconciling, Stalled (kstatus)."
    )
    status: ConditionStatus = Field(description="True, False or Unknown.")
    reason: str = Field(
        max_length=1024,
        pattern=r"^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$",
        description="Why the condition last changed, in CamelCase (e.g. DeadlineExceeded).",
    )
    message: str = Field("", max_length=CONDITION_MESSAGE_MAX, description="The same, for humans.")
    last_transition_time: AwareDatetime = Field(description="When the status last changed.")
    observed_generation: int | None = Field(
        None, ge=0, description="metadata.generation the condition was set for."
    )


class Attempt(CamelModel):
    """One submission to DLI: the operator resubmits a dead job as a new attempt (autoRecovery)."""

    attempt: int = Field(ge=1, description="Attempt number, from 1.")
    batch_id: str | None = Field(None, max_length=SHORT_TEXT_MAX, description="DLI batch id.")
    app_id: str | None = Field(None, max_length=SHORT_TEXT_MAX, description="Spark app id.")
    state: str | None = Field(None, max_length=SHORT_TEXT_MAX, description="Last DLI state.")
    job_name: str | None = Field(
        None, max_length=SHORT_TEXT_MAX, description="The DLI job name this attempt used."
    )
    submit_time: AwareDatetime | None = Field(None, description="When it was submitted.")
    finish_time: AwareDatetime | None = Field(None, description="When it ended.")
    reason: str | None = Field(None, max_length=TEXT_MAX, description="Why it ended, if not ok.")


class Submission(CamelModel):
    """The submit-intent marker, stored before the POST (DLI has no idempotency key).

    A POST leaves only after a conditional status write (resourceVersion precondition) stored
    ``sentAt`` with this process's ``claim``, so the stored status always tells whether a POST
    may have left. Without ``sentAt`` nothing was sent; with it, the job is looked up by
    ``jobName`` (no time filter) until a settle period has passed, and only then claimed and
    posted again (DESIGN.md, second round: "exactly-once is a fenced claim").
    """

    attempt: int = Field(ge=1, description="The attempt being submitted.")
    job_name: str = Field(
        min_length=1, max_length=128, description="The deterministic DLI job name sent."
    )
    requested_at: AwareDatetime = Field(description="When the submission was decided.")
    claim: str | None = Field(
        None,
        max_length=64,
        description="Token of the operator process that holds the attempt (a fencing token).",
    )
    sent_at: AwareDatetime | None = Field(
        None, description="When a create call for this attempt may have left for DLI."
    )


class DliTarget(CamelModel):
    """Where the current attempt lives in DLI, recorded with its intent.

    Everything about a batch (lookups, polls, cancels) goes to the target recorded with it, so
    editing ``projectId``, ``endpoint``, ``region`` or ``credentialsSecretRef`` mid-flight
    applies to the next attempt only (issue 10, item 6).
    """

    endpoint: str = Field(max_length=SHORT_TEXT_MAX, description="DLI endpoint URL.")
    project_id: str = Field(max_length=64, description="DLI project id.")
    credentials_secret: str | None = Field(
        None,
        max_length=253,
        description="Secret holding the credentials; absent: the operator's default credentials.",
    )


class DliBatchJobStatus(CamelModel):
    """Observed state, written by the operator through the status subresource only."""

    batch_id: str | None = Field(None, max_length=SHORT_TEXT_MAX, description="DLI batch id.")
    app_id: str | None = Field(
        None, max_length=SHORT_TEXT_MAX, description="Spark application id (DLI appId)."
    )
    state: str | None = Field(
        None,
        max_length=SHORT_TEXT_MAX,
        description="Raw DLI state: starting, running, recovering, success or dead.",
    )
    owner: str | None = Field(None, max_length=SHORT_TEXT_MAX, description="DLI job owner.")
    proxy_user: str | None = Field(
        None, max_length=SHORT_TEXT_MAX, description="DLI proxy user (resource tenant)."
    )
    kind: str | None = Field(None, max_length=SHORT_TEXT_MAX, description="DLI job kind.")
    sc_type: str | None = Field(
        None, max_length=SHORT_TEXT_MAX, description="DLI resource type (A, B, C or CUSTOMIZED)."
    )
    queue: str | None = Field(None, max_length=SHORT_TEXT_MAX, description="DLI queue.")
    log: list[Text] = Field(
        default_factory=list,
        max_length=LOG_LINES_MAX,
        description="The last lines of the job's log, as DLI returns them.",
    )
    create_time: AwareDatetime | None = Field(None, description="DLI create_time.")
    update_time: AwareDatetime | None = Field(None, description="DLI update_time.")
    duration: str | None = Field(
        None, max_length=64, description="Running time from DLI's duration, e.g. 1h2m3s."
    )
    phase: Phase | None = Field(None, description="Where the job is, in the operator's words.")
    observed_generation: int | None = Field(
        None, ge=0, description="metadata.generation the operator last acted on."
    )
    retries: int = Field(0, ge=0, description="Resubmissions after a dead attempt so far.")
    attempts: list[Attempt] = Field(
        default_factory=list,
        max_length=ATTEMPTS_MAX,
        description=f"The newest {ATTEMPTS_MAX} submissions, oldest first.",
    )
    submission: Submission | None = Field(
        None, description="A submission in flight: written before the POST to DLI."
    )
    target: DliTarget | None = Field(
        None, description="The DLI endpoint, project and credentials of the current attempt."
    )
    start_time: AwareDatetime | None = Field(
        None, description="When the first attempt was submitted (activeDeadlineSeconds)."
    )
    completion_time: AwareDatetime | None = Field(
        None, description="When the job reached a final phase (ttlSecondsAfterFinished)."
    )
    conditions: list[Condition] = Field(
        default_factory=list,
        max_length=len(ConditionType),
        description="Submitted, Running, Complete and Failed (as for a batch/v1 Job); Ready, "
        "Reconciling and Stalled (kstatus); GitOpsTtlRisk.",
        json_schema_extra={
            "x-kubernetes-list-type": "map",
            "x-kubernetes-list-map-keys": ["type"],
        },
    )
    reason: str | None = Field(None, max_length=1024, description="Why it failed, CamelCase.")
    message: str | None = Field(
        None, max_length=CONDITION_MESSAGE_MAX, description="Why it failed, for humans."
    )

    @field_validator("log", mode="before")
    @classmethod
    def _keep_last_lines(cls, value: Any) -> Any:
        return value[-LOG_LINES_MAX:] if isinstance(value, list) else value

    @field_validator("attempts", mode="before")
    @classmethod
    def _keep_newest_attempts(cls, value: Any) -> Any:
        return value[-ATTEMPTS_MAX:] if isinstance(value, list) else value

    def to_patch(self, since: DliBatchJobStatus | None = None) -> dict[str, Any]:
        """The status as a merge patch; only what changed since ``since`` (``base.model_patch``)."""
        return model_patch(self, since)
