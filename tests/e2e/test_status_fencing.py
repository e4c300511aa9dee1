"""The API server itself fences a claim: a status merge patch carrying a stale resourceVersion
is refused with 409, which is what ``KubeApi.patch_status(resource_version=...)`` relies on."""

from __future__ import annotations

import json
from typing import Any

import yaml

JOB = {
    "apiVersion": "dli.dev/v1alpha1",
    "kind": "DliBatchJob",
    "metadata": {"name": "fenced"},
    "spec": {"file": "obs://bucket/app.jar", "className": "org.example.Main", "queue": "q1"},
}


def _patch_status(kube: Any, namespace: str, body: dict[str, Any]) -> Any:
    return kube.kubectl(
        "patch", "dlibatchjob", "fenced", "-n", namespace, "--subresource=status",
        "--type=merge", "-p", json.dumps(body), "-o", "json", check=False,
    )  # fmt: skip


def test_a_status_patch_with_a_stale_resource_version_is_refused(kube: Any, namespace: str) -> None:
    kube.kubectl("apply", "-n", namespace, "-f", "-", input=yaml.safe_dump(JOB))
    first = _patch_status(kube, namespace, {"status": {"phase": "Submitting"}})
    assert first.returncode == 0, first.stderr
    version = json.loads(first.stdout)["metadata"]["resourceVersion"]
    claim = {"metadata": {"resourceVersion": version}, "status": {"phase": "Pending"}}
    won = _patch_status(kube, namespace, claim)
    assert won.returncode == 0, won.stderr
    lost = _patch_status(kube, namespace, claim | {"status": {"phase": "Running"}})
    assert lost.returncode != 0
    assert "Conflict" in lost.stderr or "modified" in lost.stderr, lost.stderr
    stored = kube.kubectl("get", "dlibatchjob", "fenced", "-n", namespace, "-o", "json").stdout
    assert json.loads(stored)["status"]["phase"] == "Pending"
