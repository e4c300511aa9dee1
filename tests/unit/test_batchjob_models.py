"""The DliBatchJob models, and the CRD generated from them: defaults, round trips, no drift."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner
from pydantic import ValidationError

from dli_operator.cli import main
from dli_operator.resources.batchjob import (
    ATTEMPTS_MAX,
    LOG_LINES_MAX,
    OPERATOR_FIELDS,
    Attempt,
    ConditionType,
    DeletionPolicy,
    DliBatchJob,
    DliBatchJobSpec,
    DliBatchJobStatus,
    Phase,
    Submission,
)
from dli_operator.resources.crd import build_crd, job_fields, render_crd

REPO = Path(__file__).resolve().parents[2]
CRD_FILE = REPO / "crds" / "dlibatchjobs.dli.dev.yaml"
EXAMPLES = sorted((REPO / "examples").glob("*.yaml"))
NOW = datetime(2024, 8, 19, 8, 0, tzinfo=UTC)
MINIMAL = {"file": "obs://b/app.jar", "className": "com.example.Main", "queue": "default"}


def example_jobs() -> list[dict[str, Any]]:
    docs = [d for p in EXAMPLES for d in yaml.safe_load_all(p.read_text()) if d]
    return [d for d in docs if d["kind"] == "DliBatchJob"]


def crd_schema() -> dict[str, Any]:
    crd = yaml.safe_load(CRD_FILE.read_text())
    schema: dict[str, Any] = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    return schema


def walk(node: dict[str, Any], path: str = "") -> list[tuple[str, dict[str, Any]]]:
    """Every schema node with its path, depth first."""
    found = [(path, node)]
    for name, sub in node.get("properties", {}).items():
        found += walk(sub, f"{path}.{name}")
    if isinstance(node.get("items"), dict):
        found += walk(node["items"], f"{path}[]")
    if isinstance(node.get("additionalProperties"), dict):
        found += walk(node["additionalProperties"], f"{path}{{}}")
    return found


def test_the_crd_in_crds_is_exactly_what_the_crd_command_prints() -> None:
    result = CliRunner().invoke(main, ["crd"])
    assert result.exit_code == 0, result.output
    assert result.output == CRD_FILE.read_text() == render_crd()


def test_the_crd_file_parses_to_the_crd_built_from_the_models() -> None:
    assert yaml.safe_load(CRD_FILE.read_text()) == build_crd()


def test_the_spec_schema_has_every_model_field_and_nothing_else() -> None:
    props = crd_schema()["properties"]["spec"]["properties"]
    aliases = {f.alias for f in DliBatchJobSpec.model_fields.values()}
    assert set(props) == aliases
    assert crd_schema()["properties"]["spec"]["required"] == ["file"]


def test_the_schema_is_structural() -> None:
    for path, node in walk(crd_schema()):
        assert not {"$ref", "anyOf", "allOf", "oneOf", "const", "title", "default"} & set(node), (
            path
        )
        assert "type" in node, path
        assert node.get("additionalProperties") is not False, path


def test_every_field_has_a_description_for_kubectl_explain() -> None:
    for path, node in walk(crd_schema()["properties"]["spec"]):
        if path and not path.endswith(("[]", "{}")):
            assert node.get("description"), path


def test_every_spec_string_list_and_map_is_bounded_for_the_cel_cost_budget() -> None:
    bound = {"string": "maxLength", "array": "maxItems", "object": "maxProperties"}
    for path, node in walk(crd_schema()["properties"]["spec"]):
        kind = node["type"]
        if kind in bound and "enum" not in node and "properties" not in node:
            assert bound[kind] in node, path


def test_every_job_field_is_immutable_and_no_operator_field_is() -> None:
    spec = crd_schema()["properties"]["spec"]
    spec_rules = {r["rule"] for r in spec["x-kubernetes-validations"]}
    for name, node in spec["properties"].items():
        rules = {r["rule"] for r in node.get("x-kubernetes-validations", [])}
        immutable = "self == oldSelf" in rules
        present = f"has(self.{name}) == has(oldSelf.{name})" in spec_rules
        assert immutable == present == (name not in OPERATOR_FIELDS), name
    assert set(job_fields()) | OPERATOR_FIELDS == set(spec["properties"])


def test_every_rule_message_names_its_field() -> None:
    for path, node in walk(crd_schema()["properties"]["spec"], "spec"):
        for entry in node.get("x-kubernetes-validations", []):
            assert entry["message"].startswith("spec."), (path, entry)


def test_the_status_enums_match_the_design() -> None:
    status = crd_schema()["properties"]["status"]["properties"]
    assert status["phase"]["enum"] == [p.value for p in Phase]
    assert [p.value for p in Phase] == [
        "Pending", "Submitting", "Starting", "Running", "Recovering",
        "Suspended", "Succeeded", "Failed", "Cancelled",
    ]  # fmt: skip
    assert [c.value for c in ConditionType] == [
        "Submitted", "Running", "Complete", "Failed",  # as for a batch/v1 Job
        "Ready", "Reconciling", "Stalled",  # kstatus (issue 14)
        "GitOpsTtlRisk",
    ]  # fmt: skip
    conditions = status["conditions"]
    assert conditions["x-kubernetes-list-map-keys"] == ["type"]


def test_only_succeeded_failed_and_cancelled_are_final() -> None:
    assert {p for p in Phase if p.is_final} == {Phase.SUCCEEDED, Phase.FAILED, Phase.CANCELLED}


@pytest.mark.parametrize("job", example_jobs(), ids=lambda j: j["metadata"]["name"])
def test_every_example_round_trips_through_the_models(job: dict[str, Any]) -> None:
    parsed = DliBatchJob.from_body(job)
    assert parsed.spec.model_dump(by_alias=True, exclude_unset=True) == job["spec"]
    assert parsed.metadata.name == job["metadata"]["name"]


def test_operator_fields_have_sensible_defaults() -> None:
    spec = DliBatchJobSpec.model_validate(
        {**MINIMAL, "credentialsSecretRef": {"name": "dli-credentials"}}
    )
    assert spec.deletion_policy is DeletionPolicy.CANCEL
    assert spec.suspend is False
    assert spec.credentials_secret_ref is not None
    ref = spec.credentials_secret_ref
    assert (ref.access_key_key, ref.secret_key_key, ref.security_token_key) == (
        "accessKey",
        "secretKey",
        "securityToken",
    )
    assert spec.ttl_seconds_after_finished is None
    assert spec.active_deadline_seconds is None


def test_unknown_spec_fields_are_refused_by_the_model() -> None:
    with pytest.raises(ValidationError, match="driverMemroy"):
        DliBatchJobSpec.model_validate({**MINIMAL, "driverMemroy": "2G"})


def test_a_body_without_status_parses_to_an_empty_status() -> None:
    body = {"apiVersion": "dli.dev/v1alpha1", "kind": "DliBatchJob", "spec": MINIMAL}
    job = DliBatchJob.from_body({**body, "metadata": {"name": "j", "uid": "u", "labels": {}}})
    assert job.status == DliBatchJobStatus()
    assert job.status.to_patch() == {"retries": 0, "log": [], "attempts": [], "conditions": []}


def test_the_status_patch_is_camel_case_json_without_nulls() -> None:
    status = DliBatchJobStatus(
        batch_id="b-1",
        phase=Phase.SUBMITTING,
        submission=Submission(attempt=1, job_name="job-1", requested_at=NOW),
    )
    patch = status.to_patch()
    assert patch["batchId"] == "b-1"
    assert patch["phase"] == "Submitting"
    assert patch["submission"] == {
        "attempt": 1,
        "jobName": "job-1",
        "requestedAt": "2024-08-19T08:00:00Z",
    }
    assert None not in patch.values()


def test_a_patch_since_the_stored_status_holds_only_changes_and_clears_removed_keys() -> None:
    before = DliBatchJobStatus(
        phase=Phase.SUBMITTING,
        submission=Submission(attempt=1, job_name="job-1", requested_at=NOW),
    )
    after = before.model_copy(update={"phase": Phase.STARTING, "submission": None, "batch_id": "b"})
    assert after.to_patch(since=before) == {"phase": "Starting", "batchId": "b", "submission": None}
    assert after.to_patch(since=after) == {}


def test_the_status_keeps_only_the_newest_log_lines_and_attempts() -> None:
    status = DliBatchJobStatus()
    status.log.extend(f"line {i}" for i in range(LOG_LINES_MAX + 5))
    status.attempts.extend(Attempt(attempt=i) for i in range(1, ATTEMPTS_MAX + 4))
    patch = status.to_patch()
    assert patch["log"][0] == "line 5"
    assert len(patch["log"]) == LOG_LINES_MAX
    assert patch["attempts"][0]["attempt"] == 4
    assert len(patch["attempts"]) == ATTEMPTS_MAX


def test_naive_timestamps_are_refused_so_status_times_are_always_rfc3339() -> None:
    with pytest.raises(ValidationError):
        Submission(attempt=1, job_name="j", requested_at=datetime(2024, 1, 1))
