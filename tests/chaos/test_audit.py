"""The chaos audit itself, on made-up cluster and DLI views: each finding it must be able to make.

A suite whose audit cannot fail proves nothing; these need no control plane.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

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
