"""The ScheduledDliBatchJob models and CRD: generated, never copied, and in step with crds/."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner
from pydantic import ValidationError

from dli_operator.cli import main
from dli_operator.resources import schedule_crd
from dli_operator.resources.batchjob import DliBatchJobSpec
from dli_operator.resources.crd import openapi_schema, render_crd
from dli_operator.resources.gitops import ttl_risk
from dli_operator.resources.health import summarize
from dli_operator.resources.schedule import (
    CRON_PATTERN,
    ConcurrencyPolicy,
    ScheduledDliBatchJob,
)
from dli_operator.resources.status import DliBatchJobStatus, Phase
from dli_operator.scheduling import SCHEDULE_LABEL, SCHEDULED_TIME_ANNOTATION, child_manifest

REPO = Path(__file__).resolve().parents[2]
CRD_FILE = REPO / "crds" / "scheduleddlibatchjobs.dli.dev.yaml"
EXAMPLE = REPO / "examples" / "scheduled-sparkpi.yaml"
NOON = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)


def spec_schema() -> dict[str, Any]:
    crd = yaml.safe_load(CRD_FILE.read_text())
    schema: dict[str, Any] = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    return schema["properties"]["spec"]


def without_messages(node: Any) -> Any:
    if isinstance(node, list):
        return [without_messages(n) for n in node]
    if isinstance(node, dict):
        return {k: without_messages(v) for k, v in node.items() if k not in ("message",)}
    return node


def test_the_crd_in_crds_is_exactly_what_the_crd_command_prints() -> None:
    result = CliRunner().invoke(main, ["crd", "ScheduledDliBatchJob"])
    assert result.exit_code == 0, result.output
    expected = render_crd(schedule_crd.build_crd(), schedule_crd.COMMAND)
    assert result.output == CRD_FILE.read_text() == expected


def test_the_template_spec_is_the_dli_batch_job_spec_schema_with_every_rule() -> None:
    template = spec_schema()["properties"]["jobTemplate"]["properties"]["spec"]
    job = openapi_schema(DliBatchJobSpec)
    template = {k: v for k, v in template.items() if k != "description"}
    job = {k: v for k, v in job.items() if k != "description"}
    assert without_messages(template) == without_messages(job)
    assert len(template["x-kubernetes-validations"]) >= 8


def test_template_rule_messages_name_the_template_field() -> None:
    template = spec_schema()["properties"]["jobTemplate"]["properties"]["spec"]
    messages = re.findall(r"'message': '([^']*)'", str(template))
    assert messages
    for message in messages:
        assert re.search(r"(?<!jobTemplate\.)\bspec\.(?!jobTemplate)", message) is None, message


def test_template_job_fields_are_not_immutable() -> None:
    template = spec_schema()["properties"]["jobTemplate"]["properties"]["spec"]
    assert "oldSelf" not in str(template)


def test_the_example_parses_and_its_children_are_owned_labelled_dli_batch_jobs() -> None:
    body = yaml.safe_load(EXAMPLE.read_text())
    body["metadata"].update(namespace="ns", uid="u-1")
    schedule = ScheduledDliBatchJob.from_body(body)
    assert schedule.spec.concurrency_policy == ConcurrencyPolicy.FORBID
    child = child_manifest(schedule, NOON)
    assert child["metadata"]["name"] == f"nightly-sparkpi-{int(NOON.timestamp()) // 60}"
    assert child["metadata"]["labels"] == {"team": "analytics", SCHEDULE_LABEL: "nightly-sparkpi"}
    assert child["metadata"]["annotations"] == {SCHEDULED_TIME_ANNOTATION: NOON.isoformat()}
    (owner,) = child["metadata"]["ownerReferences"]
    assert owner == {
        "apiVersion": "dli.dev/v1alpha1",
        "kind": "ScheduledDliBatchJob",
        "name": "nightly-sparkpi",
        "uid": "u-1",
        "controller": True,
        "blockOwnerDeletion": True,
    }
    DliBatchJobSpec.model_validate(child["spec"])  # the child is a valid DliBatchJob spec
    assert child["spec"]["className"] == "org.apache.spark.examples.SparkPi"


def test_schedule_defaults_are_cronjobs() -> None:
    body = yaml.safe_load(EXAMPLE.read_text())
    for key in ("concurrencyPolicy", "successfulJobsHistoryLimit", "failedJobsHistoryLimit"):
        del body["spec"][key]
    spec = ScheduledDliBatchJob.from_body(body).spec
    assert spec.concurrency_policy == ConcurrencyPolicy.ALLOW
    assert (spec.successful_jobs_history_limit, spec.failed_jobs_history_limit) == (3, 1)
    assert spec.suspend is False


def test_a_bad_template_is_refused_by_the_model_too() -> None:
    body = yaml.safe_load(EXAMPLE.read_text())
    body["spec"]["jobTemplate"]["spec"]["maxRetryTimes"] = 101
    with pytest.raises(ValidationError):
        ScheduledDliBatchJob.from_body(body)


@pytest.mark.parametrize(
    ("schedule", "valid"),
    [
        ("* * * * *", True),
        ("*/15 0-6,22-23 1,15 JAN-MAR mon-fri", True),
        ("0 2 * * 7", True),
        ("@daily", True),
        ("@Hourly", True),
        ("60 * * * *", False),
        ("0 24 * * *", False),
        ("0 0 32 * *", False),
        ("0 0 * 13 *", False),
        ("0 0 * * 8", False),
        ("* * * *", False),
        ("* * * * * *", False),
        ("TZ=UTC 0 2 * * *", False),
        ("CRON_TZ=UTC 0 2 * * *", False),
        ("@every 5m", False),
        (" 0 2 * * *", False),
    ],
)
def test_the_schedule_pattern_accepts_cron_and_refuses_the_rest(schedule: str, valid: bool) -> None:
    # RE2 and Python agree on this pattern (no backreferences, no lookarounds).
    pattern = CRON_PATTERN.replace("\\t", "\t")
    assert (re.match(pattern, schedule) is not None) is valid


@pytest.mark.parametrize(
    ("phase", "ready", "reconciling", "stalled"),
    [
        (Phase.RUNNING, "False", "True", "False"),
        (Phase.PENDING, "False", "True", "False"),
        (Phase.RECOVERING, "False", "True", "False"),
        (Phase.SUCCEEDED, "True", "False", "False"),
        (Phase.SUSPENDED, "True", "False", "False"),
        (Phase.FAILED, "False", "False", "True"),
        (Phase.CANCELLED, "False", "False", "True"),
    ],
)
def test_summarize_derives_the_kstatus_conditions_from_the_phase(
    phase: Phase, ready: str, reconciling: str, stalled: str
) -> None:
    status = summarize(DliBatchJobStatus(phase=phase, reason="JobFailed", message="boom"), NOON)
    got = {c.type.value: c.status.value for c in status.conditions}
    assert got == {"Ready": ready, "Reconciling": reconciling, "Stalled": stalled}


def test_summarize_keeps_transition_times_while_nothing_flips() -> None:
    first = summarize(DliBatchJobStatus(phase=Phase.STARTING), NOON)
    later = summarize(first.model_copy(update={"phase": Phase.RUNNING}), NOON.replace(hour=13))
    times = {c.type: c.last_transition_time for c in later.conditions}
    assert set(times.values()) == {NOON}
    done = summarize(later.model_copy(update={"phase": Phase.SUCCEEDED}), NOON.replace(hour=14))
    flipped = {c.type.value: c.last_transition_time.hour for c in done.conditions}
    assert flipped == {"Ready": 14, "Reconciling": 14, "Stalled": 12}


@pytest.mark.parametrize("phase", [Phase.PENDING, Phase.SUBMITTING, Phase.RECOVERING])
def test_an_unfinished_job_waiting_for_a_fix_is_stalled_not_reconciling(phase: Phase) -> None:
    why = ("PolicyDenied", "namespace team is not admitted to the default credentials")
    status = summarize(DliBatchJobStatus(phase=phase), NOON, stalled=why)
    got = {c.type.value: (c.status.value, c.reason, c.message) for c in status.conditions}
    text = f"{phase.value}: {why[1]}"
    assert got == {
        "Ready": ("False", "PolicyDenied", text),
        "Reconciling": ("False", "PolicyDenied", text),
        "Stalled": ("True", "PolicyDenied", text),
    }


def test_a_stall_turns_back_into_reconciling_once_the_cause_is_fixed() -> None:
    why = ("CredentialsUnavailable", "Secret team/dli does not exist")
    stalled = summarize(DliBatchJobStatus(phase=Phase.PENDING), NOON, stalled=why)
    later = NOON.replace(hour=13)
    fixed = summarize(stalled.model_copy(update={"phase": Phase.SUBMITTING}), later)
    got = {c.type.value: (c.status.value, c.last_transition_time.hour) for c in fixed.conditions}
    assert got == {"Ready": ("False", 12), "Reconciling": ("True", 13), "Stalled": ("False", 13)}


@pytest.mark.parametrize("phase", [Phase.SUCCEEDED, Phase.SUSPENDED, Phase.FAILED])
def test_a_stall_says_nothing_about_a_finished_or_suspended_job(phase: Phase) -> None:
    status = DliBatchJobStatus(phase=phase, reason="JobFailed", message="boom")
    plain = summarize(status, NOON)
    assert summarize(status, NOON, stalled=("PolicyDenied", "refused")) == plain


def test_a_failed_job_is_stalled_with_its_reason_and_message() -> None:
    status = DliBatchJobStatus(phase=Phase.FAILED, reason="SubmitRejected", message="DLI.0002")
    stalled = next(c for c in summarize(status, NOON).conditions if c.type == "Stalled")
    assert (stalled.reason, stalled.message) == ("SubmitRejected", "Failed: DLI.0002")


@pytest.mark.parametrize(
    ("labels", "annotations", "ttl", "tool"),
    [
        ({}, {"argocd.argoproj.io/tracking-id": "app:dli.dev/DliBatchJob:ns/j"}, 60, "Argo CD"),
        ({"app.kubernetes.io/instance": "app"}, {}, 0, "Argo CD"),
        ({"kustomize.toolkit.fluxcd.io/name": "jobs"}, {}, 60, "Flux"),
        ({"helm.toolkit.fluxcd.io/name": "jobs"}, {}, 60, "Flux"),
        ({"kustomize.toolkit.fluxcd.io/name": "jobs"}, {}, None, None),
        ({"team": "a"}, {}, 60, None),
    ],
)
def test_a_git_managed_job_with_a_ttl_is_warned_about(
    labels: dict[str, str], annotations: dict[str, str], ttl: int | None, tool: str | None
) -> None:
    risk = ttl_risk(labels, annotations, ttl)
    if tool is None:
        assert risk is None
    else:
        assert risk is not None
        assert tool in risk
        assert "runs again" in risk


def test_the_gitops_ttl_condition_comes_and_goes_with_the_risk() -> None:
    status = summarize(DliBatchJobStatus(phase=Phase.RUNNING), NOON, gitops_ttl_risk="careful")
    assert ("GitOpsTtlRisk", "True") in {(c.type.value, c.status.value) for c in status.conditions}
    cleared = summarize(status, NOON)
    assert "GitOpsTtlRisk" not in {c.type.value for c in cleared.conditions}
