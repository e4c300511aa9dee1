"""The Argo CD Lua health checks and the Flux CEL expressions, run against both kinds' statuses.

The statuses are the YAML files in ``tests/data/statuses/`` (whole objects, or a bare ``status``
mapping); the test runs over whatever is there, so statuses captured from e2e runs can be added.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import celpy
import lupa
import pytest
import yaml

from dli_operator import scheduling
from dli_operator.resources.schedule import ScheduledDliBatchJob
from dli_operator.resources.status import Phase

ROOT = Path(__file__).resolve().parents[2]
ARGOCD = ROOT / "deploy" / "argocd"
FLUX_SNIPPET = ROOT / "deploy" / "flux" / "dlibatchjob-healthchecks.yaml"
STATUSES = ROOT / "tests" / "data" / "statuses"
ARGO_KEY = "resource.customizations.health.dli.dev_DliBatchJob"
ARGO_SCHEDULE_KEY = "resource.customizations.health.dli.dev_ScheduledDliBatchJob"

# What each phase means to Argo CD and to Flux (kstatus).
EXPECTED: dict[str, tuple[str, str]] = {
    "Pending": ("Progressing", "InProgress"),
    "Submitting": ("Progressing", "InProgress"),
    "Starting": ("Progressing", "InProgress"),
    "Running": ("Progressing", "InProgress"),
    "Recovering": ("Progressing", "InProgress"),
    "Suspended": ("Suspended", "Current"),
    "Succeeded": ("Healthy", "Current"),
    "Failed": ("Degraded", "Failed"),
    "Cancelled": ("Degraded", "Failed"),
}


def expected(obj: dict[str, Any]) -> tuple[str, str]:
    """What Argo CD and Flux must say: the phase's meaning, unless the job is stalled."""
    conditions = obj["status"].get("conditions", [])
    if any(c["type"] == "Stalled" and c["status"] == "True" for c in conditions):
        return ("Degraded", "Failed")  # waits for an admin or its author (issue 19)
    return EXPECTED[obj["status"]["phase"]]


def load_object(path: Path) -> dict[str, Any]:
    """A status file as a whole DliBatchJob; a bare status gets a minimal object around it."""
    data = yaml.safe_load(path.read_text())
    if "status" not in data and "phase" in data:
        data = {"metadata": {"name": path.stem, "generation": 1}, "status": data}
    return data


def status_files() -> list[Path]:
    return sorted(STATUSES.glob("*.yaml"))


def argo_health(obj: dict[str, Any], script_name: str = "health.lua") -> dict[str, str]:
    """Run a health script the way Argo CD does: a fresh Lua state, the object as ``obj``."""
    lua = lupa.LuaRuntime(unpack_returned_tuples=True)
    lua.globals().obj = lua.table_from(obj, recursive=True)
    script = (ARGOCD / script_name).read_text()
    result = lua.execute(script)
    return {"status": result["status"], "message": result["message"]}


def flux_status(obj: dict[str, Any], kind: str = "DliBatchJob") -> str:
    """Evaluate the healthCheckExprs as kustomize-controller does (fluxcd/pkg runtime/cel)."""
    checks = yaml.safe_load(FLUX_SNIPPET.read_text())["spec"]["healthCheckExprs"]
    (check,) = [c for c in checks if (c["apiVersion"], c["kind"]) == ("dli.dev/v1alpha1", kind)]
    observed = obj.get("status", {}).get("observedGeneration")
    generation = obj.get("metadata", {}).get("generation")
    if observed is not None and generation is not None and observed != generation:
        return "InProgress"
    env = celpy.Environment()
    activation = {key: celpy.json_to_cel(value) for key, value in obj.items()}
    for field, outcome in (
        ("inProgress", "InProgress"),
        ("failed", "Failed"),
        ("current", "Current"),
    ):
        program = env.program(env.compile(check[field]))
        if bool(program.evaluate(activation)):
            return outcome
    return "InProgress"


def test_every_phase_has_a_status_file() -> None:
    phases = {load_object(path)["status"]["phase"] for path in status_files()}
    assert phases >= set(EXPECTED), f"no status file for {sorted(set(EXPECTED) - phases)}"


@pytest.mark.parametrize("path", status_files(), ids=lambda path: path.stem)
def test_argo_cd_health_follows_the_phase(path: Path) -> None:
    obj = load_object(path)
    health = argo_health(obj)
    assert health["status"] == expected(obj)[0]
    # A degraded job says why, in the operator's own words when it has some.
    assert obj["status"].get("message", "") in health["message"]
    assert health["message"]


@pytest.mark.parametrize("path", status_files(), ids=lambda path: path.stem)
def test_flux_health_follows_the_phase(path: Path) -> None:
    obj = load_object(path)
    assert flux_status(obj) == expected(obj)[1]


def test_a_stalled_unfinished_job_is_degraded_with_its_reason_for_both() -> None:
    obj = load_object(STATUSES / "pending-stalled.yaml")
    assert obj["status"]["phase"] == "Pending"
    health = argo_health(obj)
    assert health["status"] == "Degraded"
    assert health["message"].startswith("PolicyDenied: Pending: refused by ")
    assert flux_status(obj) == "Failed"


@pytest.mark.parametrize("phase", ["Pending", "Submitting", "Running", "Recovering"])
def test_a_stall_that_was_fixed_is_progressing_again(phase: str) -> None:
    stalled = load_object(STATUSES / "pending-stalled.yaml")
    conditions = [
        {**c, "status": {"Reconciling": "True", "Stalled": "False"}.get(c["type"], c["status"])}
        for c in stalled["status"]["conditions"]
    ]
    obj = {**stalled, "status": {**stalled["status"], "phase": phase, "conditions": conditions}}
    assert argo_health(obj)["status"] == "Progressing"
    assert flux_status(obj) == "InProgress"


def test_a_job_without_status_is_progressing_for_argo_cd_and_in_progress_for_flux() -> None:
    obj = {"apiVersion": "dli.dev/v1alpha1", "kind": "DliBatchJob", "metadata": {"generation": 1}}
    assert argo_health(obj)["status"] == "Progressing"
    assert flux_status(obj) == "InProgress"


def test_a_job_with_an_empty_status_is_progressing_for_argo_cd_and_in_progress_for_flux() -> None:
    obj = {"metadata": {"generation": 1}, "status": {}}
    assert argo_health(obj)["status"] == "Progressing"
    assert flux_status(obj) == "InProgress"


def test_a_status_behind_the_spec_is_progressing_whatever_its_phase() -> None:
    obj = {"metadata": {"generation": 3}, "status": {"phase": "Succeeded", "observedGeneration": 2}}
    health = argo_health(obj)
    assert health["status"] == "Progressing"
    assert "generation 3" in health["message"]
    assert flux_status(obj) == "InProgress"


@pytest.mark.parametrize(
    ("condition", "argo", "flux"),
    [("Complete", "Healthy", "Current"), ("Failed", "Degraded", "Failed")],
)
def test_without_a_phase_the_terminal_conditions_decide(
    condition: str, argo: str, flux: str
) -> None:
    status = {"conditions": [{"type": condition, "status": "True", "reason": "X", "message": "m"}]}
    obj = {"metadata": {"generation": 1}, "status": status}
    assert argo_health(obj)["status"] == argo
    assert flux_status(obj) == flux


def test_an_unknown_phase_is_unknown_to_argo_cd_and_in_progress_for_flux() -> None:
    obj = {"metadata": {"generation": 1}, "status": {"phase": "Exploded"}}
    assert argo_health(obj) == {"status": "Unknown", "message": "Unknown phase Exploded"}
    assert flux_status(obj) == "InProgress"


def test_the_argocd_cm_snippet_embeds_health_lua_verbatim() -> None:
    patch = yaml.safe_load((ARGOCD / "argocd-cm-patch.yaml").read_text())
    assert (patch["kind"], patch["metadata"]["name"]) == ("ConfigMap", "argocd-cm")
    assert patch["data"][ARGO_KEY] == (ARGOCD / "health.lua").read_text()
    schedules = patch["data"][ARGO_SCHEDULE_KEY]
    assert schedules == (ARGOCD / "health-scheduleddlibatchjob.lua").read_text()


# --- ScheduledDliBatchJob: statuses made by the planner itself --------------------------------

NOW = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)


def schedule_object(
    children: list[scheduling.Child], generation: int = 1, **spec: Any
) -> dict[str, Any]:
    """A schedule with the status ``scheduling.plan`` gives it for these children."""
    body = {
        "metadata": {"name": "nightly", "namespace": "ns", "uid": "u", "generation": generation},
        "spec": {
            "schedule": "0 * * * *",
            "jobTemplate": {"spec": {"queue": "q", "file": "obs://b/a.py"}},
            **spec,
        },
        "status": {"lastScheduleTime": NOW.isoformat()},
    }
    step = scheduling.plan(ScheduledDliBatchJob.model_validate(body), children, NOW)
    status = step.status.to_patch(since=type(step.status)())
    status["observedGeneration"] = 1
    return {**body, "status": status}


def run(phase: Phase) -> scheduling.Child:
    finished = None if phase == Phase.RUNNING else NOW
    return scheduling.Child("nightly-1", "c", NOW - timedelta(minutes=5), phase, finished, "boom")


@pytest.mark.parametrize(
    ("obj", "argo", "flux"),
    [
        (schedule_object([]), "Healthy", "Current"),
        (schedule_object([run(Phase.RUNNING)]), "Progressing", "InProgress"),
        (schedule_object([run(Phase.FAILED)]), "Degraded", "Failed"),
        (schedule_object([run(Phase.SUCCEEDED)]), "Healthy", "Current"),
        (schedule_object([], suspend=True), "Suspended", "Current"),
        (schedule_object([], schedule="0 0 30 2 *"), "Degraded", "Failed"),
        (schedule_object([], generation=2), "Progressing", "InProgress"),
    ],
    ids=[
        "no-run-yet",
        "running",
        "last-failed",
        "last-succeeded",
        "suspended",
        "invalid",
        "behind",
    ],
)
def test_schedule_health_for_argo_cd_and_flux(obj: dict[str, Any], argo: str, flux: str) -> None:
    health = argo_health(obj, "health-scheduleddlibatchjob.lua")
    assert health["status"] == argo
    assert health["message"]
    assert flux_status(obj, "ScheduledDliBatchJob") == flux


def test_a_failed_schedule_says_which_run_failed() -> None:
    health = argo_health(schedule_object([run(Phase.FAILED)]), "health-scheduleddlibatchjob.lua")
    assert "nightly-1" in health["message"]
    assert "boom" in health["message"]


def test_a_schedule_without_status_is_progressing_for_argo_cd_and_in_progress_for_flux() -> None:
    obj = {"metadata": {"generation": 1}, "spec": {"schedule": "@daily"}}
    assert argo_health(obj, "health-scheduleddlibatchjob.lua")["status"] == "Progressing"
    assert flux_status(obj, "ScheduledDliBatchJob") == "InProgress"
