"""deploy/components/finalizer-policy on the real API server (Kubernetes 1.36, KEP-3962).

The API server adds the operator's finalizer when a DliBatchJob is created, so the operator
writes nothing to the main resource of a job on the happy path (issue 18: at most 4 API writes
per job). The binding here is limited to the test's namespace: the control plane is shared with
other tests, whose objects must not get a finalizer no operator will remove.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
POLICY = REPO / "deploy" / "components" / "finalizer-policy" / "policy.yaml"
FINALIZER = "dli.dev/finalizer"
RUN_SECONDS = "spark.dli.emulator.runSeconds"
SPEC = {"className": "org.apache.spark.examples.SparkPi", "file": "obs://b/pi.jar"}
# A new policy takes effect once the API server's policy informer has it: seconds, not more.
ACTIVE_TIMEOUT_SECONDS = 60.0


@pytest.fixture
def policy(kube: Any, namespace: str) -> Any:
    """The component's policy, its binding limited to ``namespace``; removed afterwards."""
    docs = [d for d in yaml.safe_load_all(POLICY.read_text()) if d]
    suffix = f"-{namespace}"
    for doc in docs:
        doc["metadata"]["name"] += suffix
        if doc["kind"] == "MutatingAdmissionPolicyBinding":
            doc["spec"]["policyName"] += suffix
            selector = {"matchLabels": {"kubernetes.io/metadata.name": namespace}}
            doc["spec"]["matchResources"] = {"namespaceSelector": selector}
    _apply(kube, yaml.safe_dump_all(docs))
    yield
    # No operator is left to remove the finalizers: take them off, so the namespace can go.
    listed = kube.kubectl("get", "dlibatchjobs", "-n", namespace, "-o", "name").stdout.split()
    for name in listed:
        kube.kubectl(
            "patch", name, "-n", namespace, "--type=merge",
            "-p", json.dumps({"metadata": {"finalizers": None}}), check=False,
        )  # fmt: skip
    for doc in docs:
        kind = doc["kind"].lower()
        kube.kubectl("delete", kind, doc["metadata"]["name"], "--ignore-not-found", check=False)


def _apply(kube: Any, manifests: str) -> None:
    """kubectl apply, again for a while if refused: right after a control plane starts, its
    discovery may not list a kind yet (seen once in ten runs, for one of the two kinds)."""
    deadline = time.monotonic() + ACTIVE_TIMEOUT_SECONDS
    while (out := kube.kubectl("apply", "-f", "-", input=manifests, check=False)).returncode:
        assert time.monotonic() < deadline, out.stderr
        time.sleep(1.0)


def _finalizers(jobs: Any, name: str) -> list[str]:
    return list(jobs.get(name)["metadata"].get("finalizers") or [])


def _await_active(jobs: Any) -> None:
    """Create probes until one gets the finalizer: the policy is then in force."""
    deadline = time.monotonic() + ACTIVE_TIMEOUT_SECONDS
    for n in range(1000):
        probe = jobs.manifest(f"probe-{n}", SPEC | {"suspend": True})
        _apply(jobs.kube, yaml.safe_dump(probe))
        if FINALIZER in _finalizers(jobs, f"probe-{n}"):
            return
        if time.monotonic() > deadline:
            break
        time.sleep(1.0)
    raise AssertionError("the finalizer policy never took effect")


def _main_resource_writers(body: dict[str, Any]) -> set[str]:
    """The field managers of the main resource (status writes have subresource ``status``)."""
    fields = body["metadata"].get("managedFields") or []
    return {entry["manager"] for entry in fields if not entry.get("subresource")}


def test_the_api_server_adds_the_finalizer_at_create_but_not_to_an_orphan_job(
    kube: Any, jobs: Any, policy: Any
) -> None:
    _await_active(jobs)
    jobs.apply("kept", SPEC)
    jobs.apply("orphan", SPEC | {"deletionPolicy": "Orphan"})
    assert _finalizers(jobs, "kept") == [FINALIZER]
    assert _finalizers(jobs, "orphan") == []
    # A user's own finalizer is kept beside ours (the apply configuration merges the set).
    manifest = jobs.manifest("theirs", SPEC)
    manifest["metadata"]["finalizers"] = ["example.com/audit"]
    kube.kubectl("create", "-n", jobs.namespace, "-f", "-", input=yaml.safe_dump(manifest))
    assert sorted(_finalizers(jobs, "theirs")) == sorted(["example.com/audit", FINALIZER])


def test_with_the_policy_the_operator_writes_only_the_status_of_a_job_that_succeeds(
    kube: Any, jobs: Any, policy: Any, emulator: Any, operator: Any
) -> None:
    _await_active(jobs)
    jobs.apply("pi", SPEC)
    jobs.wait_phase("pi", "Succeeded")
    out = kube.kubectl(
        "get", "dlibatchjob", "pi", "-n", jobs.namespace, "-o", "json", "--show-managed-fields"
    )
    body = json.loads(out.stdout)
    assert body["metadata"]["finalizers"] == [FINALIZER]
    assert body["metadata"]["generation"] == 1
    # The create is the only write of the main resource: the operator's finalizer PATCH, without
    # the policy, shows as a second manager here.
    assert _main_resource_writers(body) == {"kubectl-client-side-apply"}
    # Deleting still cancels through the finalizer the API server put there.
    jobs.delete("pi")
    assert not jobs.exists("pi")


def test_a_job_deleted_while_the_operator_is_down_is_cancelled_by_the_finalizer_it_was_born_with(
    jobs: Any, policy: Any, emulator: Any, operator: Any
) -> None:
    """The promise the finalizer keeps, with the API server as its only writer: a running job
    deleted while no operator runs stays until its DLI batch is cancelled, once."""
    _await_active(jobs)
    jobs.apply("long", SPEC | {"conf": {RUN_SECONDS: "300"}})
    jobs.wait_phase("long", "Running")
    operator.kill()
    jobs.delete("long", wait=False)
    time.sleep(2.0)
    assert jobs.exists("long"), "deleted with no operator to cancel its DLI batch"
    assert emulator.created("long")[0]["state"] == "running"
    operator.start()
    deadline = time.monotonic() + 60.0
    while jobs.exists("long"):
        assert time.monotonic() < deadline, "the returning operator never let the job go"
        time.sleep(0.5)
    assert emulator.calls().get("cancel") == 1
    assert emulator.created("long")[0]["state"] == "dead"
