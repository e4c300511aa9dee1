"""The scheduler's order of work against a recording fake of KubeApi: children first, then status.

A crash between the two must repeat nothing: the next step finds the child (AlreadyExists, or in
the list) and only writes the status.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from dli_operator import scheduling
from dli_operator.kubeapi import KubeApiError
from dli_operator.scheduler import RETRY_SECONDS, Scheduler

NOON = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)


class FakeKube:
    """Records calls; ``exists`` is the owner uid of a child already there, ``refuse`` a status."""

    def __init__(
        self, schedule: dict[str, Any], exists: str | None = None, refuse: int = 0
    ) -> None:
        self.schedule = schedule
        self.children: list[dict[str, Any]] = []
        self.calls: list[str] = []
        self.exists = exists
        self.refuse = refuse

    async def get_object(self, plural: str, namespace: str, name: str) -> dict[str, Any]:
        if plural == "dlibatchjobs":
            self.calls.append(f"get {name}")
            return {"metadata": {"name": name, "ownerReferences": [{"uid": self.exists}]}}
        self.calls.append("get")
        return self.schedule

    async def list_jobs(self, namespace: str, selector: str) -> list[dict[str, Any]]:
        self.calls.append(f"list {selector}")
        return self.children

    async def create_job(self, namespace: str, body: dict[str, Any]) -> bool:
        self.calls.append(f"create {body['metadata']['name']}")
        if self.refuse:
            raise KubeApiError("POST dlibatchjobs: forbidden", self.refuse)
        if self.exists:
            return False
        self.children.append(body)
        return True

    async def delete_job(self, namespace: str, name: str, uid: str) -> None:
        self.calls.append(f"delete {name}")

    async def patch_schedule_status(self, namespace: str, name: str, status: dict[str, Any]):
        self.calls.append("patch scheduleddlibatchjobs")
        self.schedule["status"] = {**self.schedule.get("status", {}), **status}
        return self.schedule


def body(**spec: Any) -> dict[str, Any]:
    return {
        "metadata": {
            "name": "nightly",
            "namespace": "ns",
            "uid": "u-1",
            "generation": 1,
            "creationTimestamp": (NOON - timedelta(hours=1)).isoformat(),
        },
        "spec": {
            "schedule": "0 * * * *",
            "jobTemplate": {"spec": {"queue": "q", "file": "obs://b/a.py"}},
            **spec,
        },
    }


def recorder() -> tuple[list[tuple[str, str, str]], Any]:
    posted: list[tuple[str, str, str]] = []
    return posted, lambda kind, reason, message: posted.append((kind, reason, message))


async def test_a_due_time_creates_the_child_before_writing_the_status() -> None:
    kube = FakeKube(body())
    posted, announce = recorder()
    delay = await Scheduler(kube, clock=lambda: NOON + timedelta(seconds=1)).step(  # type: ignore[arg-type]
        "ns", "nightly", announce
    )
    name = scheduling.child_name("nightly", NOON)
    assert kube.calls == [
        "get",
        "list dli.dev/schedule=nightly",
        f"create {name}",
        "patch scheduleddlibatchjobs",
    ]
    assert kube.schedule["status"]["lastScheduleTime"].startswith("2026-01-01T12:00:00")
    assert [p[1] for p in posted] == ["SuccessfulCreate"]
    assert delay == 300.0


async def test_a_child_that_exists_already_is_not_announced_as_created() -> None:
    kube = FakeKube(body(), exists="u-1")
    posted, announce = recorder()
    await Scheduler(kube, clock=lambda: NOON + timedelta(seconds=1)).step("ns", "nightly", announce)  # type: ignore[arg-type]
    assert posted == []
    assert "patch scheduleddlibatchjobs" in kube.calls


async def test_the_step_after_a_create_creates_nothing_and_waits_for_the_next_time() -> None:
    kube = FakeKube(body())
    _, announce = recorder()
    clock = [NOON + timedelta(seconds=1)]
    scheduler = Scheduler(kube, clock=lambda: clock[0])  # type: ignore[arg-type]
    await scheduler.step("ns", "nightly", announce)
    kube.calls.clear()
    kube.schedule["status"] = {}  # the status write was lost in a crash
    clock[0] = NOON + timedelta(minutes=59, seconds=59)
    delay = await scheduler.step("ns", "nightly", announce)
    assert not [c for c in kube.calls if c.startswith("create")]
    assert 1.0 <= delay <= 2.0  # the next hour, just after it begins


async def test_a_repeated_event_is_posted_once_per_process() -> None:
    running = {
        "metadata": {
            "name": "nightly-1",
            "uid": "c",
            "ownerReferences": [{"uid": "u-1"}],
            "annotations": {
                scheduling.SCHEDULED_TIME_ANNOTATION: (NOON - timedelta(hours=1)).isoformat()
            },
        },
        "status": {"phase": "Running"},
    }
    kube = FakeKube(body(concurrencyPolicy="Forbid"))
    kube.children.append(running)
    posted, announce = recorder()
    scheduler = Scheduler(kube, clock=lambda: NOON + timedelta(seconds=1))  # type: ignore[arg-type]
    await scheduler.step("ns", "nightly", announce)
    await scheduler.step("ns", "nightly", announce)
    assert [p[1] for p in posted] == ["JobAlreadyActive"]


async def test_children_of_a_namesake_schedule_are_ignored() -> None:
    stranger = {
        "metadata": {
            "name": scheduling.child_name("nightly", NOON),
            "ownerReferences": [{"uid": "someone-else"}],
            "annotations": {scheduling.SCHEDULED_TIME_ANNOTATION: NOON.isoformat()},
        }
    }
    kube = FakeKube(body(concurrencyPolicy="Forbid"))
    kube.children.append(stranger)
    _, announce = recorder()
    await Scheduler(kube, clock=lambda: NOON + timedelta(seconds=1)).step("ns", "nightly", announce)  # type: ignore[arg-type]
    assert f"create {scheduling.child_name('nightly', NOON)}" in kube.calls


async def test_a_namesake_job_in_the_way_is_a_warning_and_the_time_is_not_recorded() -> None:
    kube = FakeKube(body(), exists="someone-else")
    posted, announce = recorder()
    scheduler = Scheduler(kube, clock=lambda: NOON + timedelta(seconds=1))  # type: ignore[arg-type]
    delay = await scheduler.step("ns", "nightly", announce)
    assert [p[:2] for p in posted] == [("Warning", "NameConflict")]
    assert "patch scheduleddlibatchjobs" not in kube.calls
    assert delay == RETRY_SECONDS


async def test_a_refused_create_is_a_failed_create_warning_and_is_tried_again() -> None:
    kube = FakeKube(body(), refuse=403)
    posted, announce = recorder()
    scheduler = Scheduler(kube, clock=lambda: NOON + timedelta(seconds=1))  # type: ignore[arg-type]
    assert await scheduler.step("ns", "nightly", announce) == RETRY_SECONDS
    assert await scheduler.step("ns", "nightly", announce) == RETRY_SECONDS
    assert [p[:2] for p in posted] == [("Warning", "FailedCreate")]  # posted once
    assert "forbidden" in posted[0][2]
    assert len([c for c in kube.calls if c.startswith("create")]) == 2
    assert "patch scheduleddlibatchjobs" not in kube.calls
