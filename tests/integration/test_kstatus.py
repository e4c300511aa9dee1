"""kstatus itself (sigs.k8s.io/cli-utils, what Flux's ``wait: true``, kpt and Config Sync use)
reads both kinds right: Running -> InProgress, Failed -> Failed, Succeeded -> Current, and an
unfinished job that waits for an admin or its author (a stall) -> Failed.

The tool is hack/tools/kstatus/main.go, built from the Go module proxy by
``hack/build-tools.sh kstatus`` (cached like the control plane).
"""

from __future__ import annotations

import json
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from dli_operator import controlplane, reconcile, scheduling
from dli_operator.reconcile import Reason
from dli_operator.resources.health import summarize
from dli_operator.resources.schedule import ScheduledDliBatchJob
from dli_operator.resources.status import DliBatchJobStatus, DliTarget, Phase

NOW = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
STATUSES = Path(__file__).resolve().parents[1] / "data" / "statuses"
# What each phase must mean to kstatus (the same as deploy/flux's healthCheckExprs).
KSTATUS = {
    Phase.PENDING: "InProgress",
    Phase.SUBMITTING: "InProgress",
    Phase.STARTING: "InProgress",
    Phase.RUNNING: "InProgress",
    Phase.RECOVERING: "InProgress",
    Phase.SUSPENDED: "Current",
    Phase.SUCCEEDED: "Current",
    Phase.FAILED: "Failed",
    Phase.CANCELLED: "Failed",
}


@pytest.fixture(scope="module")
def kstatus() -> Path:
    return controlplane.build_tool("kstatus") / "kstatus"


def results(tool: Path, objects: list[dict[str, Any]]) -> list[dict[str, str]]:
    out = subprocess.run(
        [str(tool)], input=json.dumps(objects), capture_output=True, text=True, check=True
    )
    found: list[dict[str, str]] = json.loads(out.stdout)
    return found


def verdicts(tool: Path, objects: list[dict[str, Any]]) -> list[str]:
    return [result["status"] for result in results(tool, objects)]


def job(status: DliBatchJobStatus) -> dict[str, Any]:
    return {
        "apiVersion": "dli.dev/v1alpha1",
        "kind": "DliBatchJob",
        "metadata": {"name": "job", "namespace": "ns", "generation": 1},
        "status": {**status.to_patch(), "observedGeneration": 1},
    }


def test_every_phase_of_a_dli_batch_job_means_what_it_should_to_kstatus(kstatus: Path) -> None:
    phases = list(Phase)
    objects = [job(summarize(DliBatchJobStatus(phase=p), NOW)) for p in phases]
    assert dict(zip(phases, verdicts(kstatus, objects), strict=True)) == KSTATUS


def test_without_the_kstatus_conditions_a_failed_job_looked_current(kstatus: Path) -> None:
    # The bug of issue 14, kept as a check that the tool can tell the difference.
    bare = job(DliBatchJobStatus(phase=Phase.FAILED, reason="JobFailed"))
    assert verdicts(kstatus, [bare]) == ["Current"]


def test_captured_statuses_summarized_mean_their_phase(kstatus: Path) -> None:
    statuses = [yaml.safe_load(p.read_text()) for p in sorted(STATUSES.glob("*.yaml"))]
    statuses = [s.get("status", s) for s in statuses]
    parsed = [written(DliBatchJobStatus.model_validate(s)) for s in statuses]
    assert parsed
    got = verdicts(kstatus, [job(s) for s in parsed])
    # A captured job held by a missing Secret or the policy is stalled: Failed, not InProgress.
    want = ["Failed" if reconcile.stall(s) else KSTATUS[s.phase] for s in parsed if s.phase]
    assert got == want
    assert "Failed" in [w for w, s in zip(want, parsed, strict=True) if s.phase == Phase.PENDING]


def schedule_with(children: list[scheduling.Child]) -> dict[str, Any]:
    spec = {
        "schedule": "0 * * * *",
        "jobTemplate": {"spec": {"queue": "q", "file": "obs://b/a.py"}},
    }
    meta = {"name": "nightly", "namespace": "ns", "uid": "u", "generation": 1}
    schedule = ScheduledDliBatchJob.model_validate(
        {"metadata": meta, "spec": spec, "status": {"lastScheduleTime": NOW.isoformat()}}
    )
    step = scheduling.plan(schedule, children, NOW + timedelta(minutes=30))
    return {
        "apiVersion": "dli.dev/v1alpha1",
        "kind": "ScheduledDliBatchJob",
        "metadata": meta,
        "status": step.status.to_patch(since=type(step.status)()),
    }


@pytest.mark.parametrize(
    ("phase", "expected"),
    [(Phase.RUNNING, "InProgress"), (Phase.FAILED, "Failed"), (Phase.SUCCEEDED, "Current")],
)
def test_a_schedule_means_its_latest_run_to_kstatus(
    kstatus: Path, phase: Phase, expected: str
) -> None:
    finished = None if phase == Phase.RUNNING else NOW + timedelta(minutes=5)
    child = scheduling.Child("nightly-1", "c", NOW, phase, finished)
    assert verdicts(kstatus, [schedule_with([child])]) == [expected]


def test_a_schedule_with_no_run_yet_is_current(kstatus: Path) -> None:
    assert verdicts(kstatus, [schedule_with([])]) == ["Current"]


def written(status: DliBatchJobStatus) -> DliBatchJobStatus:
    """The status as the driver's writer stores it (driver/writer.py)."""
    return summarize(status, NOW, stalled=reconcile.stall(status))


def blocked(reason: str, status: DliBatchJobStatus | None = None) -> DliBatchJobStatus:
    return reconcile.blocked(status or DliBatchJobStatus(), reason, f"held: {reason}", NOW)


@pytest.mark.parametrize(
    ("reason", "expected"),
    [
        (Reason.POLICY_DENIED, "Failed"),
        (Reason.CREDENTIALS, "Failed"),
        (Reason.AUTHENTICATION_FAILED, "Failed"),
        (Reason.DLI_UNAVAILABLE, "InProgress"),
        (Reason.RATE_LIMITED, "InProgress"),
        (Reason.QUEUED, "InProgress"),
    ],
)
def test_a_job_waiting_for_a_fix_is_failed_to_kstatus_and_one_waiting_for_dli_in_progress(
    kstatus: Path, reason: str, expected: str
) -> None:
    (result,) = results(kstatus, [job(written(blocked(reason)))])
    assert result["status"] == expected
    if expected == "Failed":
        assert f"held: {reason}" in result["message"]


def test_a_stalled_job_is_in_progress_again_once_the_cause_is_fixed(kstatus: Path) -> None:
    stalled = written(blocked(Reason.POLICY_DENIED))
    fixed = written(
        reconcile.intended(
            stalled,
            1,
            "job-1",
            NOW,
            target=DliTarget(endpoint="https://dli.example", project_id="p" * 32),
            claim="c",
            sending=True,
        )
    )
    assert verdicts(kstatus, [job(stalled), job(fixed)]) == ["Failed", "InProgress"]
