"""The chaos audit itself, on made-up cluster and DLI views: each finding it must be able to make.

A suite whose audit cannot fail proves nothing; these need no control plane. The Stranded
column comes from a sampler (tests/e2e/progress.py), fed here with made-up samples and clock.
"""

from __future__ import annotations

import json
import subprocess
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from tests.e2e.progress import Progress, Stranded, Timings

from .conftest import Audit, Findings

UID = "0a1b2c3d-0000-0000-0000-000000000000"
BATCH_1, BATCH_2 = "11111111-0000-0000-0000-000000000000", "22222222-0000-0000-0000-000000000000"


class FakeKube:
    def __init__(self, items: list[dict[str, Any]], events: str = '{"items": []}') -> None:
        self.items, self.events = items, events

    def kubectl(self, *args: str, **_: Any) -> subprocess.CompletedProcess[str]:
        out = self.events if "events" in args else json.dumps({"items": self.items})
        return subprocess.CompletedProcess(list(args), 0, out, "")


class FakeEmulator:
    def __init__(self, batches: list[dict[str, Any]]) -> None:
        self.batches = batches

    def jobs(self) -> list[dict[str, Any]]:
        return self.batches


def item(phase: str, attempts: list[tuple[int, str]], batch_id: str | None) -> dict[str, Any]:
    status = {
        "phase": phase,
        "batchId": batch_id,
        "attempts": [{"attempt": n, "batchId": b} for n, b in attempts],
    }
    return {"metadata": {"name": "job", "uid": UID}, "status": status}


def batch(attempt: int, batch_id: str, state: str) -> dict[str, Any]:
    return {"name": f"job-0a1b2c3d-{attempt}", "id": batch_id, "state": state}


def audited(items: list[dict[str, Any]], batches: list[dict[str, Any]], **kw: Any) -> Findings:
    audit = Audit(FakeKube(items, **kw), "ns", FakeEmulator(batches))  # type: ignore[arg-type]
    return audit.run([])


def test_a_job_that_agrees_with_dli_is_clean() -> None:
    found = audited([item("Succeeded", [(1, BATCH_1)], BATCH_1)], [batch(1, BATCH_1, "success")])
    assert found.clean(), found


def test_a_running_job_dli_also_runs_is_clean() -> None:
    found = audited([item("Running", [(1, BATCH_1)], BATCH_1)], [batch(1, BATCH_1, "running")])
    assert found.clean(), found


def test_an_attempt_posted_twice_is_a_duplicate() -> None:
    batches = [batch(1, BATCH_1, "success"), batch(1, BATCH_2, "running")]
    found = audited([item("Succeeded", [(1, BATCH_1)], BATCH_1)], batches)
    assert found.duplicates == 1


def test_a_batch_no_status_records_is_lost() -> None:
    batches = [batch(1, BATCH_1, "dead"), batch(2, BATCH_2, "success")]
    found = audited([item("Failed", [(1, BATCH_1)], BATCH_1)], batches)
    assert found.lost == 1


@pytest.mark.parametrize(
    ("phase", "state"),
    [("Running", "success"), ("Succeeded", "dead"), ("Starting", "dead"), ("Failed", "running")],
)
def test_a_status_dli_does_not_agree_with_is_stuck(phase: str, state: str) -> None:
    found = audited([item(phase, [(1, BATCH_1)], BATCH_1)], [batch(1, BATCH_1, state)])
    assert found.stuck == 1


def test_a_deleted_jobs_batch_left_running_is_leaked() -> None:
    audit = Audit(FakeKube([]), "ns", FakeEmulator([batch(1, BATCH_1, "running")]))  # type: ignore[arg-type]
    audit.deleted.add(("job", "0a1b2c3d"))
    assert audit.run([]).leaked == 1


def test_a_secret_in_a_log_or_an_event_is_a_hit(tmp_path: Path) -> None:
    log = tmp_path / "operator.log"
    log.write_text("signing with EMULATORSK\n")
    events = json.dumps({"items": [{"message": "denied for EMULATORAK"}]})
    audit = Audit(FakeKube([], events=events), "ns", FakeEmulator([]))  # type: ignore[arg-type]
    audit.logs.append(log)
    found = audit.run([])
    assert found.secret_hits == 2
    assert not found.clean()


# --- Stranded: the progress sampler, on made-up samples and a made-up clock -----------------

NOW = 1_800_000_000.0  # epoch seconds; the statuses' timestamps are written relative to it


class Clock:
    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> float:
        return self.now


def stamp(seconds: float) -> str:
    return datetime.fromtimestamp(NOW + seconds, UTC).isoformat().replace("+00:00", "Z")


ANNOUNCED = "waiting for a DLI request slot: about 30s, 29 requests ahead"


def queued(message: str = ANNOUNCED) -> dict[str, Any]:
    """A job whose intent is stored and whose step waits for a request slot."""
    condition = {"type": "Submitted", "status": "False", "reason": "WaitingForRequestSlot",
                 "message": message, "lastTransitionTime": stamp(0)}  # fmt: skip
    submission = {"attempt": 1, "jobName": "job-0a1b2c3d-1", "requestedAt": stamp(0)}
    return {"phase": "Pending", "submission": submission, "conditions": [condition]}


def sampled(
    statuses: list[dict[str, Any]], batches: list[dict[str, Any]], seconds: float, **timings: Any
) -> list[Stranded]:
    """Sample ``statuses`` (one job) every second for ``seconds``; the stranded found."""
    clock = Clock()
    items = [{"metadata": {"name": "job", "uid": UID}, "status": s} for s in statuses]
    current = {"i": 0}
    progress = Progress(
        lambda: [items[min(current["i"], len(items) - 1)]],
        lambda: batches,
        Timings(**timings),
        clock=clock,
    )
    for step in range(int(seconds) + 1):
        current["i"] = step
        clock.now = NOW + step
        progress.sample()
    return progress.stop()


def test_a_job_whose_step_never_comes_back_is_stranded() -> None:
    # The issue-18 case: queued behind 30 s of requests, and nothing ever happens again.
    stranded = sampled([queued()], [], 120, floor_seconds=20)
    assert [s.name for s in stranded] == ["job"]
    assert stranded[0].seconds > 30 + 20


def test_a_job_waiting_out_its_announced_queue_is_not_stranded() -> None:
    assert sampled([queued()], [], 45, floor_seconds=20) == []


def test_a_wait_told_again_counts_from_when_it_was_told() -> None:
    # A new owner after a handover tells its own queue (chaos pause-resume, 2026-12-07): 30 s
    # from second 40, so the job may wait until 70 s + patience (10 s); one told nothing new
    # may not.
    later = "waiting for a DLI request slot: about 30s, 12 requests ahead"
    told_again = [queued()] * 40 + [queued(later)]
    assert sampled(told_again, [], 79, floor_seconds=10) == []
    assert sampled(told_again, [], 82, floor_seconds=10) != []
    assert sampled([queued()], [], 79, floor_seconds=10) != []


def test_a_job_behind_a_backlog_at_the_configured_rate_is_not_stranded() -> None:
    # No announcement (another engine need not write one): a backlog of one job at 0.01/s.
    status = {"phase": "Pending"}
    assert sampled([status], [], 60, dli_rate=0.01, floor_seconds=5) == []
    assert sampled([status], [], 60, floor_seconds=5) != []


def test_a_running_job_dli_still_runs_is_not_stranded_and_one_dli_finished_is() -> None:
    status = {"phase": "Running", "state": "running", "batchId": BATCH_1}
    assert sampled([status], [batch(1, BATCH_1, "running")], 120) == []
    assert sampled([status], [batch(1, BATCH_1, "success")], 120) != []


def test_a_job_settling_a_create_that_may_have_left_is_not_stranded_until_the_settle_ends() -> None:
    status = queued() | {"submission": {"attempt": 1, "jobName": "j", "sentAt": stamp(0)}}
    status["conditions"][0] |= {"reason": "WaitingForLateCreate", "message": "looked up"}
    assert sampled([status], [], 30, settle_seconds=22, floor_seconds=10) == []
    assert sampled([status], [], 60, settle_seconds=22, floor_seconds=10) != []


def test_a_settled_job_sent_again_waits_out_the_queue_it_announces() -> None:
    # CI on main: after a handover the new owner waited out the settle of the old owner's
    # claim, then queued its own send behind 30 s of requests; its sentAt is long past.
    status = queued() | {"submission": {"attempt": 1, "jobName": "j", "sentAt": stamp(-40)}}
    assert sampled([status], [], 38, settle_seconds=22, floor_seconds=10) == []
    assert sampled([status], [], 60, settle_seconds=22, floor_seconds=10) != []


def test_a_settled_job_waits_behind_the_backlog_at_the_configured_rate() -> None:
    # The step that sends again may wait for a free place in the submit lane, announcing
    # nothing: the backlog at the configured rate explains the wait, and no more than that.
    status = queued() | {"submission": {"attempt": 1, "jobName": "j", "sentAt": stamp(0)}}
    status["conditions"][0] |= {"reason": "WaitingForLateCreate", "message": "looked up"}
    assert sampled([status], [], 60, settle_seconds=22, dli_rate=0.01, floor_seconds=5) == []
    assert sampled([status], [], 60, settle_seconds=22, dli_rate=1.0, floor_seconds=5) != []


def test_a_job_in_its_retry_backoff_is_not_stranded() -> None:
    status = {
        "phase": "Recovering", "state": "dead", "batchId": BATCH_1, "retries": 1,
        "attempts": [{"attempt": 1, "batchId": BATCH_1, "finishTime": stamp(0)}],
    }  # fmt: skip
    dead = [batch(1, BATCH_1, "dead")]
    assert sampled([status], dead, 44, retry_backoff_seconds=40, floor_seconds=5) == []
    assert sampled([status], dead, 50, retry_backoff_seconds=4, floor_seconds=5) != []


def test_a_job_that_keeps_progressing_is_not_stranded() -> None:
    # A new status every 10 s, each one 'due' at once: patience restarts at every change.
    steps = [{"phase": "Pending", "retries": i // 10} for i in range(120)]
    assert sampled(steps, [], 119, floor_seconds=15) == []


def test_a_window_without_any_replica_is_excused() -> None:
    clock = Clock()
    item = {"metadata": {"name": "job", "uid": UID}, "status": queued("soon")}
    progress = Progress(lambda: [item], lambda: [], Timings(floor_seconds=10), clock=clock)
    progress.excuse(100)
    for step in range(105):
        clock.now = NOW + step
        progress.sample()
    assert progress.stop() == []


def test_a_final_or_user_blocked_job_is_never_stranded() -> None:
    for status in (
        {"phase": "Succeeded"},
        {"phase": "Suspended"},
        {"phase": "Pending", "conditions": [{"type": "Submitted", "reason": "PolicyDenied"}]},
    ):
        assert sampled([status], [], 300) == [], status


def test_the_audit_counts_stranded_jobs() -> None:
    audit = Audit(FakeKube([]), "ns", FakeEmulator([]))  # type: ignore[arg-type]
    audit.progress.stranded["job"] = Stranded("job", 99, "phase Pending")
    found = audit.run([])
    assert found.stranded == 1
    assert not found.clean()


def test_forgetting_keeps_a_job_still_stranded_and_drops_one_that_recovered() -> None:
    clock = Clock()
    stuck = {"metadata": {"name": "stuck", "uid": UID}, "status": queued("soon")}
    healed = {"metadata": {"name": "healed", "uid": UID}, "status": queued("soon")}
    progress = Progress(lambda: [stuck, healed], lambda: [], Timings(floor_seconds=10), clock=clock)
    for step in range(30):
        clock.now = NOW + step
        progress.sample()
    assert sorted(progress.stranded) == ["healed", "stuck"]
    healed["status"] = {"phase": "Succeeded"}
    progress.forget()
    clock.now += 1
    progress.sample()
    assert [s.name for s in progress.stop()] == ["stuck"]
