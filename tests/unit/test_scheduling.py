"""The pure schedule planner on a fake clock: catch-up, missed runs, concurrency, history."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from dli_operator import scheduling
from dli_operator.resources.schedule import ScheduledDliBatchJob
from dli_operator.resources.status import ConditionStatus, Phase
from dli_operator.scheduling import Child, Reason, child_name, plan

CREATED = datetime(2026, 1, 1, 11, 0, tzinfo=UTC)
NOON = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)


def schedule(status: dict[str, Any] | None = None, **spec: Any) -> ScheduledDliBatchJob:
    return ScheduledDliBatchJob.model_validate(
        {
            "metadata": {
                "name": "nightly",
                "namespace": "ns",
                "uid": "u-1",
                "generation": 2,
                "creationTimestamp": CREATED.isoformat(),
            },
            "spec": {
                "schedule": "0 * * * *",
                "jobTemplate": {"spec": {"queue": "q", "file": "obs://b/a.py"}},
                **spec,
            },
            "status": status or {},
        }
    )


def child(at: datetime, phase: Phase | None = None, finished: datetime | None = None) -> Child:
    return Child(child_name("nightly", at), f"uid-{at:%H%M}", at, phase, finished)


def reasons(step: scheduling.Step) -> list[str]:
    return [e.reason for e in step.events]


def condition(step: scheduling.Step, kind: str) -> tuple[str, str]:
    found = next(c for c in step.status.conditions if c.type == kind)
    return found.status.value, found.reason


def test_a_due_time_creates_its_child_and_records_it() -> None:
    step = plan(schedule(), [], NOON + timedelta(seconds=3))
    assert step.create == NOON
    assert step.status.last_schedule_time == NOON
    assert [r.name for r in step.status.active] == [child_name("nightly", NOON)]
    assert step.status.next_schedule_time == step.wake_at == NOON + timedelta(hours=1)
    assert step.status.observed_generation == 2
    assert reasons(step) == [Reason.CREATED]


def test_the_child_name_is_the_schedule_name_and_the_minute_like_cronjob() -> None:
    assert child_name("nightly", NOON) == f"nightly-{int(NOON.timestamp()) // 60}"


def test_a_time_with_a_child_is_not_created_again_even_if_the_status_was_lost() -> None:
    # A crash after the create but before the status write: the child itself says it ran.
    step = plan(schedule(), [child(NOON, Phase.RUNNING)], NOON + timedelta(seconds=30))
    assert step.create is None
    assert [r.name for r in step.status.active] == [child_name("nightly", NOON)]


def test_nothing_before_the_schedule_was_created_is_due() -> None:
    step = plan(schedule(), [], CREATED + timedelta(minutes=30))
    assert step.create is None
    assert step.wake_at == NOON


def test_one_missed_time_is_caught_up_without_a_warning() -> None:
    status = {"lastScheduleTime": (NOON - timedelta(hours=1)).isoformat()}
    step = plan(schedule(status), [], NOON + timedelta(minutes=20))
    assert step.create == NOON
    assert Reason.MISSED not in reasons(step)


def test_many_missed_times_give_one_catch_up_and_a_warning_with_the_count() -> None:
    status = {"lastScheduleTime": (NOON - timedelta(hours=5)).isoformat()}
    step = plan(schedule(status), [], NOON + timedelta(minutes=20))
    assert step.create == NOON
    warning = next(e for e in step.events if e.reason == Reason.MISSED)
    assert warning.type == "Warning"
    assert warning.message.startswith("4 scheduled times were missed")


def test_a_missed_time_past_the_starting_deadline_is_not_started() -> None:
    step = plan(
        schedule(startingDeadlineSeconds=300),
        [child(NOON - timedelta(hours=1), Phase.SUCCEEDED)],
        NOON + timedelta(minutes=6),
    )
    assert step.create is None
    assert Reason.TOO_LATE in reasons(step)
    assert step.wake_at == NOON + timedelta(hours=1)


def test_a_missed_time_within_the_starting_deadline_is_started() -> None:
    step = plan(schedule(startingDeadlineSeconds=300), [], NOON + timedelta(minutes=4))
    assert step.create == NOON


@pytest.mark.parametrize(
    ("policy", "creates", "deletes"),
    [("Allow", True, False), ("Forbid", False, False), ("Replace", True, True)],
)
def test_each_concurrency_policy_with_a_run_still_active(
    policy: str, creates: bool, deletes: bool
) -> None:
    previous = child(NOON - timedelta(hours=1), Phase.RUNNING)
    step = plan(schedule(concurrencyPolicy=policy), [previous], NOON + timedelta(seconds=5))
    assert (step.create == NOON) is creates
    assert (step.delete == [previous]) is deletes
    if policy == "Forbid":
        assert reasons(step) == [Reason.ALREADY_ACTIVE]
        assert [r.name for r in step.status.active] == [previous.name]
    if policy == "Replace":
        assert [r.name for r in step.status.active] == [child_name("nightly", NOON)]
        assert reasons(step) == [Reason.REPLACED, Reason.CREATED]


def test_forbid_starts_the_waiting_time_once_the_active_run_ends() -> None:
    earlier = NOON - timedelta(hours=1)
    done = child(earlier, Phase.SUCCEEDED, NOON + timedelta(minutes=2))
    step = plan(schedule(concurrencyPolicy="Forbid"), [done], NOON + timedelta(minutes=2))
    assert step.create == NOON


def test_suspend_starts_nothing_and_has_no_next_time() -> None:
    step = plan(schedule(suspend=True), [], NOON + timedelta(seconds=5))
    assert step.create is None
    assert step.status.next_schedule_time is None
    assert step.wake_at is None
    assert condition(step, "Ready") == ("True", Reason.SUSPENDED)


def test_history_keeps_the_newest_finished_children_per_outcome() -> None:
    hours = [NOON - timedelta(hours=h) for h in range(1, 8)]
    children = [child(t, Phase.SUCCEEDED, t + timedelta(minutes=5)) for t in hours[:5]]
    children += [child(t, Phase.FAILED, t + timedelta(minutes=5)) for t in hours[5:]]
    children.append(child(NOON - timedelta(hours=9), Phase.CANCELLED, NOON))
    step = plan(schedule(successfulJobsHistoryLimit=2, failedJobsHistoryLimit=1), children, NOON)
    deleted = {c.scheduled for c in step.delete}
    assert deleted == {*hours[2:5], hours[6], NOON - timedelta(hours=9)}
    assert step.status.last_successful_time == hours[0] + timedelta(minutes=5)


def test_a_zero_history_limit_deletes_every_finished_child_but_never_an_active_one() -> None:
    running = child(NOON - timedelta(hours=2), Phase.RUNNING)
    done = child(NOON - timedelta(hours=1), Phase.SUCCEEDED, NOON)
    step = plan(
        schedule(successfulJobsHistoryLimit=0), [running, done], NOON - timedelta(minutes=1)
    )
    assert step.delete == [done]


@pytest.mark.parametrize(
    ("children", "ready", "reconciling", "stalled"),
    [
        ([], "True", "False", "False"),
        ([child(NOON, Phase.RUNNING)], "False", "True", "False"),
        ([child(NOON, Phase.FAILED, NOON)], "False", "False", "True"),
        ([child(NOON, Phase.SUCCEEDED, NOON)], "True", "False", "False"),
        (
            [
                child(NOON - timedelta(hours=1), Phase.FAILED, NOON),
                child(NOON, Phase.SUCCEEDED, NOON),
            ],
            "True",
            "False",
            "False",
        ),
    ],
)
def test_kstatus_conditions_follow_the_runs(
    children: list[Child], ready: str, reconciling: str, stalled: str
) -> None:
    # Nothing due: the noon run is recorded, the next is at one.
    status = {"lastScheduleTime": NOON.isoformat()}
    step = plan(schedule(status), children, NOON + timedelta(minutes=30))
    assert step.create is None
    got = tuple(condition(step, kind)[0] for kind in ("Ready", "Reconciling", "Stalled"))
    assert got == (ready, reconciling, stalled)


def test_a_schedule_the_operator_cannot_use_is_stalled_and_says_why() -> None:
    step = plan(schedule(schedule="0 0 30 2 *"), [], NOON)
    assert step.create is None
    assert condition(step, "Stalled") == (ConditionStatus.TRUE.value, Reason.INVALID)
    assert reasons(step) == [Reason.INVALID]
    assert step.wake_at is None


def test_a_child_is_read_from_its_body() -> None:
    body = {
        "metadata": {
            "name": "nightly-1",
            "uid": "u",
            "annotations": {scheduling.SCHEDULED_TIME_ANNOTATION: NOON.isoformat()},
        },
        "status": {"phase": "Failed", "completionTime": NOON.isoformat(), "message": "boom"},
    }
    assert scheduling.child_from_body(body) == Child(
        "nightly-1", "u", NOON, Phase.FAILED, NOON, "boom"
    )
    assert scheduling.child_from_body({"metadata": {"name": "x"}}) is None
