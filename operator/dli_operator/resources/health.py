"""What generic tools read: kstatus's conditions (sigs.k8s.io/cli-utils), derived from the phase.

Flux's ``wait: true``, kpt and Config Sync judge a custom resource with kstatus: an abnormal-true
``Reconciling`` is InProgress and ``Stalled`` is Failed, before anything else; then ``Ready``
(cli-utils pkg/kstatus/status: checkGenericProperties, checkReadyCondition). Without them every
DliBatchJob, failed or running, read as Current (issue 14). ``summarize`` is applied to every
status the driver writes; ``put_condition`` is the condition setter schedules use too.
"""

from __future__ import annotations

from datetime import datetime

from dli_operator.resources.status import (
    Condition,
    ConditionStatus,
    ConditionType,
    DliBatchJobStatus,
    Phase,
)

_IN_PROGRESS = {
    Phase.PENDING: "waiting to be submitted to DLI",
    Phase.SUBMITTING: "submitting to DLI",
    Phase.STARTING: "DLI is starting the job",
    Phase.RUNNING: "running in DLI",
    Phase.RECOVERING: "the DLI job died; the operator is resubmitting it",
}


def summarize(
    status: DliBatchJobStatus,
    now: datetime,
    *,
    gitops_ttl_risk: str | None = None,
    stalled: tuple[str, str] | None = None,
) -> DliBatchJobStatus:
    """The status with kstatus's conditions derived from its phase (and the GitOps TTL warning).

    Running and the other unfinished phases are InProgress (Reconciling), Failed and Cancelled
    are Failed (Stalled), Succeeded and Suspended are Current (Ready): what the Argo CD and Flux
    health checks in deploy/ say too. ``stalled`` (reason, message: ``outcomes.stall``) is an
    unfinished job that waits for an admin or its author: Stalled with that reason, not
    Reconciling, since kstatus reads an abnormal-true Reconciling first.
    """
    new = status.model_copy(deep=True)
    phase = new.phase or Phase.PENDING
    text = f"{phase.value}: {new.message}" if new.message else phase.value
    if phase in _IN_PROGRESS:
        text = f"{phase.value}: {_IN_PROGRESS[phase]}"
    reason = new.reason if phase in (Phase.FAILED, Phase.CANCELLED) and new.reason else phase
    waiting = stalled if phase in _IN_PROGRESS else None
    if waiting is not None:
        reason, text = waiting[0], f"{phase.value}: {waiting[1]}"
    conditions = put_condition(
        new.conditions,
        ConditionType.READY,
        phase in (Phase.SUCCEEDED, Phase.SUSPENDED),
        reason,
        text,
        now,
    )
    reconciling = phase in _IN_PROGRESS and waiting is None
    conditions = put_condition(
        conditions, ConditionType.RECONCILING, reconciling, reason, text, now
    )
    failed = phase in (Phase.FAILED, Phase.CANCELLED) or waiting is not None
    conditions = put_condition(conditions, ConditionType.STALLED, failed, reason, text, now)
    if gitops_ttl_risk:
        conditions = put_condition(
            conditions, ConditionType.GITOPS_TTL_RISK, True, "TtlUnderGitOps", gitops_ttl_risk, now
        )
    else:
        conditions = [c for c in conditions if c.type != ConditionType.GITOPS_TTL_RISK]
    new.conditions = conditions
    return new


def put_condition(
    conditions: list[Condition],
    kind: ConditionType,
    value: bool,
    reason: str,
    message: str,
    now: datetime,
) -> list[Condition]:
    """The conditions with ``kind`` set; its lastTransitionTime moves only when its status flips."""
    wanted = ConditionStatus.TRUE if value else ConditionStatus.FALSE
    old = next((c for c in conditions if c.type == kind), None)
    since = old.last_transition_time if old and old.status == wanted else now
    condition = Condition(
        type=kind, status=wanted, reason=reason, message=message[:4096], last_transition_time=since
    )
    order = list(ConditionType)
    return sorted(
        [c for c in conditions if c.type != kind] + [condition], key=lambda c: order.index(c.type)
    )
