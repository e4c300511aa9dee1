"""The DliBatchJob CRD on a real API server: schema, CEL rules, status subresource, kubectl UX.

The invalid corpus lives in ``tests/data/invalid/``: one broken rule per file, the expected
message fragment in a ``# expect:`` header; a file with two documents is an update (the valid
original, then the refused change).
"""

from __future__ import annotations

import json
import re
import time
from pathlib import Path
from typing import Any, cast

import pytest
import yaml
from kubernetes import client
from kubernetes.client.exceptions import ApiException

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = sorted((REPO / "examples").glob("*.yaml"))
INVALID = sorted((REPO / "tests" / "data" / "invalid").glob("*.yaml"))
GROUP, VERSION, PLURAL = "dli.dev", "v1alpha1", "dlibatchjobs"
EXPLAIN_TIMEOUT_SECONDS = 30.0
# Creations report one cause per broken rule; updates and strict decoding errors report none.
CREATIONS = [
    p for p in INVALID if "\n---\n" not in p.read_text() and "unknown field" not in p.read_text()
]
VALID: dict[str, Any] = {
    "apiVersion": f"{GROUP}/{VERSION}",
    "kind": "DliBatchJob",
    "metadata": {"name": "job"},
    "spec": {"queue": "default", "file": "obs://b/app.jar", "className": "com.example.Main"},
}


def custom(kube: Any) -> client.CustomObjectsApi:
    return client.CustomObjectsApi(kube.api)


def create(kube: Any, namespace: str, body: dict[str, Any], **kw: Any) -> dict[str, Any]:
    result = custom(kube).create_namespaced_custom_object(
        GROUP, VERSION, namespace, PLURAL, body, field_validation="Strict", **kw
    )
    return cast(dict[str, Any], result)


def get(kube: Any, namespace: str, name: str) -> dict[str, Any]:
    return cast(
        dict[str, Any],
        custom(kube).get_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, name),
    )


def body_of(error: ApiException) -> dict[str, Any]:
    return cast(dict[str, Any], json.loads(error.body or "{}"))


def refusal(call: Any) -> str:
    """The API server's message for a refused request (fails the test if it was accepted)."""
    with pytest.raises(ApiException) as info:
        call()
    assert info.value.status in (400, 422), info.value.body
    return str(body_of(info.value)["message"])


def expected_fragment(path: Path) -> str:
    match = re.search(r"^# expect: (.+)$", path.read_text(), re.MULTILINE)
    assert match, f"{path.name} has no '# expect:' header"
    return match.group(1)


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.stem)
def test_every_example_is_accepted_by_the_api_server(kube: Any, namespace: str, path: Path) -> None:
    kube.kubectl("apply", "-n", namespace, "-f", str(path))
    jobs = [d for d in yaml.safe_load_all(path.read_text()) if d["kind"] == "DliBatchJob"]
    for job in jobs:
        stored = get(kube, namespace, job["metadata"]["name"])
        assert stored["spec"] == job["spec"]


def test_the_invalid_corpus_is_large_enough_to_cover_every_rule() -> None:
    assert len(INVALID) >= 40
    assert len(CREATIONS) >= 40


@pytest.mark.parametrize("path", INVALID, ids=lambda p: p.stem)
def test_each_invalid_manifest_is_refused_naming_the_field(
    kube: Any, namespace: str, path: Path
) -> None:
    docs = [d for d in yaml.safe_load_all(path.read_text()) if d]
    if len(docs) == 2:
        original, change = docs
        stored = create(kube, namespace, original)
        change["metadata"]["resourceVersion"] = stored["metadata"]["resourceVersion"]
        message = refusal(
            lambda: custom(kube).replace_namespaced_custom_object(
                GROUP,
                VERSION,
                namespace,
                PLURAL,
                change["metadata"]["name"],
                change,
                dry_run="All",
                field_validation="Strict",
            )
        )
    else:
        message = refusal(lambda: create(kube, namespace, docs[0], dry_run="All"))
    assert expected_fragment(path) in message


@pytest.mark.parametrize("path", CREATIONS, ids=lambda p: p.stem)
def test_each_invalid_creation_breaks_exactly_one_rule(
    kube: Any, namespace: str, path: Path
) -> None:
    with pytest.raises(ApiException) as info:
        create(kube, namespace, yaml.safe_load(path.read_text()), dry_run="All")
    causes = body_of(info.value)["details"]["causes"]
    # A schema error makes the server skip the CEL rules and say so in a cause without a field.
    broken = [c for c in causes if c.get("field") != "<nil>"]
    assert len(broken) == 1, causes


def test_operator_fields_stay_mutable(kube: Any, namespace: str) -> None:
    stored = create(kube, namespace, VALID)
    operator_fields = {
        "suspend": True,
        "deletionPolicy": "Orphan",
        "ttlSecondsAfterFinished": 60,
        "activeDeadlineSeconds": 600,
        "credentialsSecretRef": {"name": "dli-credentials"},
        "projectId": "0123456789abcdef0123456789abcdef",
        "region": "cn-north-4",
    }
    changed = {**stored, "spec": {**stored["spec"], **operator_fields}}
    custom(kube).replace_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, "job", changed)
    result = get(kube, namespace, "job")
    assert result["spec"] == {**VALID["spec"], **operator_fields}
    assert result["metadata"]["generation"] == 2


def test_kubectl_explain_shows_the_field_description(kube: Any, namespace: str) -> None:
    deadline = time.monotonic() + EXPLAIN_TIMEOUT_SECONDS
    while True:  # the OpenAPI document follows the CRD a moment later
        out = kube.kubectl("explain", "dlibatchjob.spec.driverMemory", check=False)
        if out.returncode == 0 or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert "memory with a unit, e.g. 2G or 2048M" in out.stdout, out.stderr


def test_kubectl_get_shows_the_printer_columns(kube: Any, namespace: str) -> None:
    create(kube, namespace, VALID)
    status = {
        "phase": "Running",
        "state": "running",
        "appId": "spark-1",
        "retries": 2,
        "batchId": "07a3e4e6-9a28-4e92-8d3f-9c538621a166",
        "duration": "1m30s",
    }
    custom(kube).patch_namespaced_custom_object_status(
        GROUP, VERSION, namespace, PLURAL, "job", {"status": status}
    )
    narrow = kube.kubectl("get", "dlibatchjobs", "-n", namespace).stdout.splitlines()
    wide = kube.kubectl("get", "dli", "-n", namespace, "-o", "wide").stdout.splitlines()
    assert narrow[0].split() == ["NAME", "PHASE", "STATE", "APP-ID", "QUEUE", "RETRIES", "AGE"]
    assert narrow[1].split()[:6] == ["job", "Running", "running", "spark-1", "default", "2"]
    assert wide[0].split()[-2:] == ["BATCH-ID", "DURATION"]
    assert wide[1].split()[-2:] == [status["batchId"], "1m30s"]


def test_short_names_find_the_jobs(kube: Any, namespace: str) -> None:
    create(kube, namespace, VALID)
    for name in ("dlijob", "dlijobs"):
        out = kube.kubectl("get", name, "-n", namespace, "-o", "name").stdout
        assert out.strip() == "dlibatchjob.dli.dev/job"


def test_status_is_written_only_through_the_status_subresource(kube: Any, namespace: str) -> None:
    create(kube, namespace, {**VALID, "status": {"phase": "Succeeded"}})
    api = custom(kube)
    api.patch_namespaced_custom_object(
        GROUP, VERSION, namespace, PLURAL, "job", {"status": {"phase": "Failed"}}
    )
    assert "status" not in get(kube, namespace, "job")
    api.patch_namespaced_custom_object_status(
        GROUP, VERSION, namespace, PLURAL, "job", {"status": {"phase": "Pending"}}
    )
    assert get(kube, namespace, "job")["status"] == {"phase": "Pending"}


def test_the_status_schema_is_strict(kube: Any, namespace: str) -> None:
    create(kube, namespace, VALID)
    api = custom(kube)
    message = refusal(
        lambda: api.patch_namespaced_custom_object_status(
            GROUP, VERSION, namespace, PLURAL, "job", {"status": {"phase": "Done"}}
        )
    )
    assert 'status.phase: Unsupported value: "Done"' in message
    message = refusal(
        lambda: api.patch_namespaced_custom_object_status(
            GROUP,
            VERSION,
            namespace,
            PLURAL,
            "job",
            {"status": {"kopf": {"progress": {}}}},
            field_validation="Strict",
        )
    )
    assert 'unknown field "status.kopf"' in message
