"""The Argo CD Lua health check and the Flux CEL expressions, run against DliBatchJob statuses.

The statuses are the YAML files in ``tests/data/statuses/`` (whole objects, or a bare ``status``
mapping); the test runs over whatever is there, so statuses captured from e2e runs can be added.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import celpy
import lupa
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
ARGOCD = ROOT / "deploy" / "argocd"
FLUX_SNIPPET = ROOT / "deploy" / "flux" / "dlibatchjob-healthchecks.yaml"
STATUSES = ROOT / "tests" / "data" / "statuses"
ARGO_KEY = "resource.customizations.health.dli.dev_DliBatchJob"

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


def load_object(path: Path) -> dict[str, Any]:
    """A status file as a whole DliBatchJob; a bare status gets a minimal object around it."""
    data = yaml.safe_load(path.read_text())
    if "status" not in data and "phase" in data:
        data = {"metadata": {"name": path.stem, "generation": 1}, "status": data}
    return data


def status_files() -> list[Path]:
    return sorted(STATUSES.glob("*.yaml"))


def argo_health(obj: dict[str, Any]) -> dict[str, str]:
    """Run health.lua the way Argo CD does: a fresh Lua state, the object as global ``obj``."""
    lua = lupa.LuaRuntime(unpack_returned_tuples=True)
    lua.globals().obj = lua.table_from(obj, recursive=True)
    script = (ARGOCD / "health.lua").read_text()
    result = lua.execute(script)
    return {"status": result["status"], "message": result["message"]}


def flux_status(obj: dict[str, Any]) -> str:
    """Evaluate the healthCheckExprs as kustomize-controller does (fluxcd/pkg runtime/cel)."""
    (check,) = yaml.safe_load(FLUX_SNIPPET.read_text())["spec"]["healthCheckExprs"]
    assert (check["apiVersion"], check["kind"]) == ("dli.dev/v1alpha1", "DliBatchJob")
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
    assert health["status"] == EXPECTED[obj["status"]["phase"]][0]
    # A degraded job says why, in the operator's own words when it has some.
    assert obj["status"].get("message", "") in health["message"]
    assert health["message"]


@pytest.mark.parametrize("path", status_files(), ids=lambda path: path.stem)
def test_flux_health_follows_the_phase(path: Path) -> None:
    obj = load_object(path)
    assert flux_status(obj) == EXPECTED[obj["status"]["phase"]][1]


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
