"""Drives one ScheduledDliBatchJob one step at a time: read, plan, create/delete children, store.

The pure core (``scheduling.py``) decides; this module performs, in an order that keeps a crash
harmless: children are deleted and created before the status is written, and a child is created
under its deterministic name, so a step repeated after a crash, a restart or an HA handover
finds the child (AlreadyExists) instead of running the time twice. Each step reads the schedule
and lists its children from the API server: a few calls per scheduled time, always fresh.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable
from datetime import UTC, datetime

from pydantic import ValidationError

from dli_operator import scheduling
from dli_operator.kubeapi import KubeApi, KubeApiError
from dli_operator.resources.schedule import ScheduledDliBatchJob

logger = logging.getLogger(__name__)

PLURAL = "scheduleddlibatchjobs"
Announce = Callable[[str, str, str], None]
# A schedule is looked at again at least this often, whatever it waits for (a lost wakeup).
IDLE_SECONDS = 300.0
# Step just after the scheduled minute begins, never before it.
LATE_MARGIN_SECONDS = 0.5
# A child that could not be created is tried again this much later.
RETRY_SECONDS = 30.0
# Repeated Events (a run waiting under Forbid) are posted once per process; this many remembered.
POSTED_MAX = 32


def utcnow() -> datetime:
    return datetime.now(UTC)


class Scheduler:
    """Performs scheduling steps for every ScheduledDliBatchJob of this operator."""

    def __init__(self, kube: KubeApi, *, clock: Callable[[], datetime] = utcnow) -> None:
        self.kube = kube
        self.clock = clock
        self.posted: dict[str, deque[tuple[str, str]]] = {}

    async def step(self, namespace: str, name: str, announce: Announce) -> float:
        """One step; the seconds until the next one is due."""
        body = await self.kube.get_object(PLURAL, namespace, name)
        if body is None or body["metadata"].get("deletionTimestamp"):
            return IDLE_SECONDS
        try:
            schedule = ScheduledDliBatchJob.from_body(body)
        except ValidationError as exc:
            announce("Warning", "Malformed", f"the schedule does not parse: {exc}"[:1024])
            return IDLE_SECONDS
        uid = schedule.metadata.uid or ""
        items = await self.kube.list_jobs(namespace, f"{scheduling.SCHEDULE_LABEL}={name}")
        children = [
            child
            for item in items
            if scheduling.owned_by(item, uid) and (child := scheduling.child_from_body(item))
        ]
        now = self.clock()
        step = scheduling.plan(schedule, children, now)
        created = await self._perform(schedule, step, announce)
        if not created:
            # The status would claim a run that does not exist: keep it, try again soon.
            return RETRY_SECONDS
        patch = step.status.to_patch(since=schedule.status)
        if patch:
            await self.kube.patch_schedule_status(namespace, name, patch)
        if step.wake_at is None:
            return IDLE_SECONDS
        wait = (step.wake_at - self.clock()).total_seconds() + LATE_MARGIN_SECONDS
        return min(IDLE_SECONDS, max(LATE_MARGIN_SECONDS, wait))

    def forget(self, uid: str) -> None:
        self.posted.pop(uid, None)

    async def _perform(
        self, schedule: ScheduledDliBatchJob, step: scheduling.Step, announce: Announce
    ) -> bool:
        """Delete and create children, post the step's Events; False if the child is missing."""
        namespace = schedule.metadata.namespace or ""
        for child in step.delete:
            # A deleted child's finalizer cancels its DLI job (deletionPolicy); no orphan run.
            await self.kube.delete_job(namespace, child.name, child.uid)
        events, created = step.events, True
        if step.create is not None:
            outcome = await self._create(schedule, step.create)
            if outcome is not None:
                events = [e for e in events if e.reason != scheduling.Reason.CREATED]
                created = outcome.type != "Warning"
                events += [outcome] if not created else []
        seen = self.posted.setdefault(schedule.metadata.uid or "", deque(maxlen=POSTED_MAX))
        for event in events:
            key = (event.reason, event.message)
            if key not in seen:
                seen.append(key)
                announce(event.type, event.reason, event.message)
        return created

    async def _create(
        self, schedule: ScheduledDliBatchJob, scheduled: datetime
    ) -> scheduling.Event | None:
        """Create the child for ``scheduled``: None if created now, else an Event saying why not
        (Normal: it existed already, a run done before a crash or by another replica)."""
        namespace, uid = schedule.metadata.namespace or "", schedule.metadata.uid or ""
        manifest = scheduling.child_manifest(schedule, scheduled)
        name = manifest["metadata"]["name"]
        try:
            if await self.kube.create_job(namespace, manifest):
                return None
        except KubeApiError as exc:
            if not 400 <= exc.status < 500 or exc.status == 429:
                raise
            # Refused for good as it stands (RBAC, a policy, a quota): say so on the schedule.
            return scheduling.Event("Warning", "FailedCreate", f"cannot create {name}: {exc}")
        existing = await self.kube.get_object("dlibatchjobs", namespace, name)
        if existing is not None and not scheduling.owned_by(existing, uid):
            text = f"DliBatchJob {name} exists but is not a run of this schedule; "
            return scheduling.Event(
                "Warning", "NameConflict", text + f"the run due at {scheduled.isoformat()} waits"
            )
        logger.info("DliBatchJob %s/%s exists already", namespace, name)
        return scheduling.Event("Normal", "AlreadyCreated", f"{name} exists already")
