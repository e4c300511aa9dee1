"""Spec -> DLI create request, DLI state -> phase: every field and every state, by table."""

from __future__ import annotations

import json
from typing import Any

import pytest

from dli_operator.dli.models import BatchJobRequest, BatchState, is_terminal
from dli_operator.resources.batchjob import DliBatchJob, DliBatchJobSpec, Phase
from dli_operator.resources.crd import job_fields
from dli_operator.translate import (
    MAPPING,
    duration_text,
    job_name_for,
    mapping_table_markdown,
    phase_for,
    to_request,
)

MINIMAL: dict[str, Any] = {"file": "obs://b/app.jar", "className": "com.example.Main"}
# One sample value per job field, with the DLI key and value it must become.
SAMPLES: dict[str, tuple[Any, str | None, Any]] = {
    "file": ("obs://b/other.jar", "file", "obs://b/other.jar"),
    "className": ("org.apache.spark.examples.SparkPi", "className", None),
    "queue": ("default", "queue", "default"),
    "clusterName": ("legacy_q", "cluster_name", "legacy_q"),
    "args": (["1000", "x"], "args", ["1000", "x"]),
    "scType": ("B", "sc_type", "B"),
    "jars": (["a.jar"], "jars", ["a.jar"]),
    "pyFiles": (["h.zip"], "pyFiles", ["h.zip"]),
    "files": (["count.txt"], "files", ["count.txt"]),
    "modules": (["sys.datasource.hbase"], "modules", ["sys.datasource.hbase"]),
    "resources": ([{"name": "r.jar", "type": "jar"}], "resources", None),
    "groups": ([{"name": "g", "resources": [{"name": "x.jar", "type": "jar"}]}], "groups", None),
    "conf": ({"spark.dli.metaAccess.enable": "true"}, "conf", None),
    "name": ("nightly", "name", "job-7"),
    "driverMemory": ("2G", "driverMemory", "2G"),
    "driverCores": (2, "driverCores", 2),
    "executorMemory": ("2048M", "executorMemory", "2048M"),
    "executorCores": (1, "executorCores", 1),
    "numExecutors": (6, "numExecutors", 6),
    "obsBucket": ("my-bucket", "obs_bucket", "my-bucket"),
    "autoRecovery": (True, None, None),
    "maxRetryTimes": (7, None, None),
    "feature": ("basic", "feature", "basic"),
    "sparkVersion": ("2.4.5", "spark_version", "2.4.5"),
    "image": ("my-org/spark:1.0", "image", "my-org/spark:1.0"),
    "catalogName": ("dli", "catalog_name", "dli"),
    "executionAgencyUrn": ("dli_agency", "execution_agency_urn", "dli_agency"),
}


def wire(request: BatchJobRequest) -> dict[str, Any]:
    body: dict[str, Any] = json.loads(request.to_wire())
    return body


def wire_names() -> set[str]:
    return {f.serialization_alias or n for n, f in BatchJobRequest.model_fields.items()}


def test_the_mapping_table_covers_exactly_the_job_fields_in_order() -> None:
    assert [m.spec for m in MAPPING] == job_fields()
    assert set(SAMPLES) == set(job_fields())


def test_every_dli_name_in_the_table_is_a_wire_name_of_the_request() -> None:
    sent = {m.dli for m in MAPPING if m.dli}
    assert sent <= wire_names()
    assert wire_names() - sent == {"auto_recovery", "max_retry_times"}


@pytest.mark.parametrize("field", sorted(SAMPLES))
def test_each_spec_field_becomes_its_dli_field(field: str) -> None:
    value, dli_key, expected = SAMPLES[field]
    spec = DliBatchJobSpec.model_validate({**MINIMAL, field: value})
    body = wire(to_request(spec, job_name="job-7"))
    if dli_key is None:
        assert not {"auto_recovery", "max_retry_times", "autoRecovery", "maxRetryTimes"} & set(body)
    else:
        assert body[dli_key] == (value if expected is None else expected)


def test_operator_fields_never_reach_dli() -> None:
    spec = DliBatchJobSpec.model_validate(
        {
            **MINIMAL,
            "credentialsSecretRef": {"name": "s"},
            "projectId": "p",
            "region": "cn-north-4",
            "deletionPolicy": "Orphan",
            "ttlSecondsAfterFinished": 1,
            "activeDeadlineSeconds": 2,
            "suspend": True,
        }
    )
    assert wire(to_request(spec, job_name="j")) == {**MINIMAL, "name": "j"}


def test_a_pyspark_job_sends_no_class_name() -> None:
    spec = DliBatchJobSpec.model_validate({"file": "obs://b/job.py", "queue": "default"})
    assert wire(to_request(spec, job_name="j")) == {
        "file": "obs://b/job.py",
        "queue": "default",
        "name": "j",
    }


def job(name: str, spec_name: str | None = None, uid: str = "1f2e3d4c-aaaa") -> DliBatchJob:
    spec = {**MINIMAL, **({"name": spec_name} if spec_name else {})}
    return DliBatchJob.from_body({"metadata": {"name": name, "uid": uid}, "spec": spec})


def test_job_names_are_deterministic_and_unique_per_object_and_attempt() -> None:
    assert job_name_for(job("pi"), 1) == job_name_for(job("pi"), 1) == "pi-1f2e3d4c-1"
    assert job_name_for(job("pi"), 2) == "pi-1f2e3d4c-2"
    assert job_name_for(job("pi", uid="99999999-x"), 1) == "pi-99999999-1"
    assert job_name_for(job("pi", spec_name="nightly"), 3) == "nightly-1f2e3d4c-3"


def test_job_names_fit_dli_128_characters() -> None:
    name = job_name_for(job("x", spec_name="n" * 128), 100)
    assert len(name) == 128
    assert name.endswith("-1f2e3d4c-100")


@pytest.mark.parametrize(
    ("state", "phase"),
    [
        ("starting", Phase.STARTING),
        ("running", Phase.RUNNING),
        ("recovering", Phase.RECOVERING),
        ("success", Phase.SUCCEEDED),
        ("Success", Phase.SUCCEEDED),
        ("dead", Phase.FAILED),
        ("not_started", Phase.FAILED),
        ("killed", Phase.FAILED),
    ],
)
def test_each_dli_state_maps_to_one_phase(state: str, phase: Phase) -> None:
    assert phase_for(state) is phase


@pytest.mark.parametrize("state", ["starting", "running", "recovering", "success", "dead"])
def test_a_phase_is_final_exactly_when_dli_calls_the_state_terminal(state: str) -> None:
    assert phase_for(BatchState(state)).is_final == is_terminal(state)


@pytest.mark.parametrize(
    ("millis", "text"),
    [(None, None), (0, "0s"), (999, "0s"), (93_000, "1m33s"), (3_723_000, "1h2m3s"),
     (7_200_000, "2h"), (-5, "0s")],
)  # fmt: skip
def test_dli_durations_read_like_kubectl_ages(millis: int | None, text: str | None) -> None:
    assert duration_text(millis) == text


def test_the_markdown_table_has_one_row_per_mapping() -> None:
    table = mapping_table_markdown().splitlines()
    assert table[0] == "| Spec field | DLI request field | Notes |"
    assert len(table) == 2 + len(MAPPING)
    assert "| `obsBucket` | `obs_bucket` |" in mapping_table_markdown()
    assert "| `autoRecovery` | (not sent) | Not sent (DLI's auto_recovery)" in table[2 + 20]
