"""Pure scheduling of one ScheduledDliBatchJob: which child to create or delete, the new status.

``plan`` looks at the schedule, its children (the DliBatchJobs it owns) and the time, and returns
one ``Step``; ``scheduler.py`` performs it. No I/O, no clock: every rule is a table test.

Rules (batch/v1 CronJob's, issue 14):
- One child per scheduled time, named ``<schedule>-<minutes since the epoch>`` as CronJob names
  its Jobs: creating it twice fails with AlreadyExists, so a crash or a second replica can never
  run a time twice. The newest child, not only ``lastScheduleTime``, says which time ran last,
  so a status write lost in a crash loses no run either.
- Missed times (operator down, schedule suspended): at most the most recent one is started, and
  only within ``startingDeadlineSeconds`` of its time; more than one missed time is a Warning.
- ``Forbid`` starts nothing while a child is active (the time waits, within the deadline, as for
  CronJob); ``Replace`` deletes the active children (their finalizers cancel the DLI jobs) and
  starts the new one; ``Allow`` starts it.
- Finished children beyond ``successfulJobsHistoryLimit`` / ``failedJobsHistoryLimit`` are
  deleted, oldest first.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from dli_operator.cron import Cron, ScheduleError
from dli_operator.resources.health import put_condition
from dli_operator.resources.schedule import (
    ConcurrencyPolicy,
    JobReference,
    ScheduledDliBatchJob,
    ScheduledDliBatchJobStatus,
)
from dli_operator.resources.status import FINAL_PHASES, Condition, ConditionType, Phase

SCHEDULE_LABEL = "dli.dev/schedule"
SCHEDULED_TIME_ANNOTATION = "dli.dev/scheduled-time"
# Missed times are counted up to this many (CronJob stops counting at 100 too).
MISSED_COUNT_MAX = 100


class Reason:
    """Event and condition reasons of a schedule (CamelCase, as Kubernetes requires)."""

    CREATED = "SuccessfulCreate"
    ALREADY_ACTIVE = "JobAlreadyActive"
    REPLACED = "SuccessfulDelete"
    MISSED = "MissedSchedules"
    TOO_LATE = "MissedStartingDeadline"
    INVALID = "InvalidSchedule"
    ACTIVE = "JobActive"
    LAST_FAILED = "LastRunFailed"
    SUSPENDED = "Suspended"
    SCHEDULED = "Scheduled"


@dataclass(frozen=True)
class Child:
    """What the schedule needs to know about one of its DliBatchJobs."""

    name: str
    uid: str
    scheduled: datetime
    phase: Phase | None = None
    finished: datetime | None = None
    message: str = ""

    @property
    def active(self) -> bool:
        return self.phase not in FINAL_PHASES

    @property
    def succeeded(self) -> bool:
        return self.phase == Phase.SUCCEEDED


@dataclass(frozen=True)
class Event:
    type: str
    reason: str
    message: str


@dataclass
class Step:
    """What to do now: at most one child to create, children to delete, the status to store."""

    status: ScheduledDliBatchJobStatus
    create: datetime | None = None
    delete: list[Child] = field(default_factory=list)
    events: list[Event] = field(default_factory=list)
    wake_at: datetime | None = None


def child_name(schedule: str, scheduled: datetime) -> str:
    """The child for one scheduled time: the same name in every process, as CronJob's Jobs."""
    return f"{schedule}-{int(scheduled.timestamp()) // 60}"


def child_from_body(body: Mapping[str, Any]) -> Child | None:
    """A child DliBatchJob as the schedule sees it; None without its scheduled-time annotation."""
    meta = body.get("metadata") or {}
    stamp = (meta.get("annotations") or {}).get(SCHEDULED_TIME_ANNOTATION)
    if not stamp:
        return None
    status = body.get("status") or {}
    phase = status.get("phase")
    finished = status.get("completionTime")
    try:
        scheduled = datetime.fromisoformat(stamp)
    except ValueError:
        return None  # edited by hand: not a run this schedule can account for
    return Child(
        name=meta["name"],
        uid=meta.get("uid", ""),
        scheduled=scheduled,
        phase=Phase(phase) if phase in {p.value for p in Phase} else None,
        finished=datetime.fromisoformat(finished) if finished else None,
        message=status.get("message") or "",
    )


def plan(schedule: ScheduledDliBatchJob, children: list[Child], now: datetime) -> Step:
    """The one next step for this schedule."""
    spec = schedule.spec
    step = Step(status=_observed(schedule, children))
    step.delete = _beyond_history(schedule, children)
    try:
        cron = Cron.parse(spec.schedule, spec.time_zone)
    except ScheduleError as exc:
        step.events.append(Event("Warning", Reason.INVALID, str(exc)))
        step.status.next_schedule_time = None
        step.status.conditions = _conditions(step.status, children, now, invalid=str(exc))
        return step
    if not spec.suspend:
        _schedule(step, schedule, cron, children, now)
        step.status.next_schedule_time = step.wake_at = cron.next_after(now)
    else:
        step.status.next_schedule_time = None
    step.status.conditions = _conditions(step.status, children, now, suspended=spec.suspend)
    return step


def _schedule(
    step: Step, schedule: ScheduledDliBatchJob, cron: Cron, children: list[Child], now: datetime
) -> None:
    """Decide about the latest due time, if it has no child yet."""
    due = cron.latest_until(now)
    if due is None:
        return
    # The newest time already run, or the schedule's creation: nothing before it is due.
    since = _last_scheduled(schedule, children) or schedule.metadata.creation_timestamp
    since = since or due - timedelta(seconds=1)
    if due <= since:
        return
    missed = cron.count_between(since, now, MISSED_COUNT_MAX) - 1
    if missed > 0:
        more = "+" if missed + 1 >= MISSED_COUNT_MAX else ""
        text = f"{missed}{more} scheduled times were missed since {since.isoformat()}; "
        step.events.append(
            Event("Warning", Reason.MISSED, text + f"at most the latest, {due.isoformat()}, runs")
        )
    deadline = schedule.spec.starting_deadline_seconds
    if deadline is not None and now - due > timedelta(seconds=deadline):
        text = f"the run due at {due.isoformat()} is more than startingDeadlineSeconds="
        step.events.append(
            Event("Warning", Reason.TOO_LATE, text + f"{deadline} late and is not started")
        )
        return
    _start(step, schedule, due, [c for c in children if c.active and c not in step.delete])


def _start(step: Step, schedule: ScheduledDliBatchJob, due: datetime, active: list[Child]) -> None:
    """Start the run due at ``due`` as ``concurrencyPolicy`` allows, beside ``active`` runs."""
    policy = schedule.spec.concurrency_policy
    if active and policy == ConcurrencyPolicy.FORBID:
        names = ", ".join(c.name for c in active)
        text = f"not starting the run due at {due.isoformat()}: {names} still active and "
        step.events.append(
            Event("Normal", Reason.ALREADY_ACTIVE, text + "concurrencyPolicy is Forbid")
        )
        return
    if policy == ConcurrencyPolicy.REPLACE:
        step.delete.extend(active)
        for replaced in active:
            text = f"deleted DliBatchJob {replaced.name}: concurrencyPolicy is Replace"
            step.events.append(Event("Normal", Reason.REPLACED, text))
    name = child_name(schedule.metadata.name, due)
    step.create = step.status.last_schedule_time = due
    step.events.append(Event("Normal", Reason.CREATED, f"created DliBatchJob {name}"))
    gone = {c.name for c in step.delete}
    step.status.active = [
        *(r for r in step.status.active if r.name not in gone),
        JobReference(name=name),
    ]


def _last_scheduled(schedule: ScheduledDliBatchJob, children: list[Child]) -> datetime | None:
    """The newest time that has its child: from the children, then the stored status."""
    times = [c.scheduled for c in children]
    if schedule.status.last_schedule_time:
        times.append(schedule.status.last_schedule_time)
    return max(times, default=None)


def _observed(schedule: ScheduledDliBatchJob, children: list[Child]) -> ScheduledDliBatchJobStatus:
    status = schedule.status.model_copy(deep=True)
    status.observed_generation = schedule.metadata.generation
    status.active = [JobReference(name=c.name, uid=c.uid) for c in _newest(children) if c.active]
    finished = [c.finished for c in children if c.succeeded and c.finished]
    if status.last_successful_time:
        finished.append(status.last_successful_time)
    status.last_successful_time = max(finished, default=None)
    return status


def _beyond_history(schedule: ScheduledDliBatchJob, children: list[Child]) -> list[Child]:
    spec = schedule.spec
    done = [c for c in _newest(children) if not c.active]
    succeeded = [c for c in done if c.succeeded][spec.successful_jobs_history_limit :]
    failed = [c for c in done if not c.succeeded][spec.failed_jobs_history_limit :]
    return succeeded + failed


def _newest(children: list[Child]) -> list[Child]:
    return sorted(children, key=lambda c: c.scheduled, reverse=True)


def _conditions(
    status: ScheduledDliBatchJobStatus,
    children: list[Child],
    now: datetime,
    *,
    invalid: str | None = None,
    suspended: bool = False,
) -> list[Condition]:
    """kstatus's conditions: Reconciling while a run is active, Stalled once the last run
    failed (or the schedule cannot be used), Ready otherwise."""
    finished = [c for c in _newest(children) if not c.active]
    reconciling = stalled = ""
    reason = Reason.SUSPENDED if suspended else Reason.SCHEDULED
    message = "spec.suspend is true" if suspended else _next_text(status)
    if invalid:
        reason, stalled = Reason.INVALID, invalid
    elif status.active:
        reason = Reason.ACTIVE
        reconciling = "running: " + ", ".join(r.name for r in status.active)
    elif finished and not finished[0].succeeded:
        last = finished[0]
        reason = Reason.LAST_FAILED
        stalled = f"the last run, {last.name}, ended {last.phase}: {last.message}".rstrip(": ")
    text = reconciling or stalled or message
    conditions = put_condition(
        status.conditions, ConditionType.READY, not (reconciling or stalled), reason, text, now
    )
    conditions = put_condition(
        conditions, ConditionType.RECONCILING, bool(reconciling), reason, text, now
    )
    return put_condition(conditions, ConditionType.STALLED, bool(stalled), reason, text, now)


def _next_text(status: ScheduledDliBatchJobStatus) -> str:
    upcoming = status.next_schedule_time
    return f"next run at {upcoming.isoformat()}" if upcoming else "scheduled"


def child_manifest(schedule: ScheduledDliBatchJob, scheduled: datetime) -> dict[str, Any]:
    """The DliBatchJob for one scheduled time: the template, labelled and owned by the schedule.

    The ownerReference makes Argo CD show the child under its schedule (and never prune it) and
    makes deleting the schedule delete its children, whose finalizers cancel their DLI jobs.
    """
    meta, template = schedule.metadata, schedule.spec.job_template
    extra = template.metadata
    labels = {**((extra and extra.labels) or {}), SCHEDULE_LABEL: meta.name}
    annotations = {
        **((extra and extra.annotations) or {}),
        SCHEDULED_TIME_ANNOTATION: scheduled.isoformat(),
    }
    owner = {
        "apiVersion": schedule.api_version,
        "kind": schedule.kind,
        "name": meta.name,
        "uid": meta.uid,
        "controller": True,
        "blockOwnerDeletion": True,
    }
    return {
        "apiVersion": "dli.dev/v1alpha1",
        "kind": "DliBatchJob",
        "metadata": {
            "name": child_name(meta.name, scheduled),
            "labels": labels,
            "annotations": annotations,
            "ownerReferences": [owner],
        },
        "spec": template.spec.model_dump(by_alias=True, exclude_none=True, mode="json"),
    }


def owned_by(body: Mapping[str, Any], uid: str) -> bool:
    """Whether a DliBatchJob is a child of the schedule with ``uid`` (not of a namesake)."""
    refs = (body.get("metadata") or {}).get("ownerReferences") or []
    return any(ref.get("uid") == uid for ref in refs)
