"""Per-namespace credentials through ``spec.credentialsSecretRef``, on an operator with none.

The operator is started without default AK/SK, so every DLI call a job makes is signed with
its own namespace's Secret. A missing Secret and rejected keys are conditions on the job, fixed
by creating or rotating the Secret (no operator restart), and the secret key never shows. While
it waits for that fix the job is Stalled, which kstatus itself reads off the stored object as
Failed (issue 19); fixed, it runs and ends Current.
"""

from __future__ import annotations

import json
import subprocess
import time
import uuid

import pytest
from kubernetes import client

from dli_operator import controlplane

ACCESS_KEY, SECRET_KEY = "EMULATORAK", "EMULATORSK"  # what the test's emulator accepts
WRONG_SECRET_KEY = "wrong-sk-7f3a9c1e5b"
SECRET = "dli-creds"
NO_DEFAULTS = {"DLI_OPERATOR_DLI__ACCESS_KEY": "", "DLI_OPERATOR_DLI__SECRET_KEY": ""}
SECRET_REF = {"credentialsSecretRef": {"name": SECRET}}
# The operator looks again at a job blocked on credentials every 30 s (driver/core.py).
UNBLOCK_TIMEOUT = 60


def condition(status, kind):
    return next(c for c in status.get("conditions", []) if c["type"] == kind)


def kstatus(jobs, name: str) -> dict:
    """kstatus's verdict on the stored object (hack/tools/kstatus, built by `make test`)."""
    tool = controlplane.build_tool("kstatus") / "kstatus"
    out = subprocess.run(
        [str(tool)], input=json.dumps(jobs.get(name)), capture_output=True, text=True, check=True
    )
    return dict(json.loads(out.stdout))


def assert_stalled(jobs, name: str, reason: str) -> None:
    """The job waits for a fix: Stalled with the reason, not Reconciling; Failed to kstatus."""
    status = jobs.status(name)
    stalled, reconciling = condition(status, "Stalled"), condition(status, "Reconciling")
    assert (stalled["status"], stalled["reason"]) == ("True", reason), status
    assert reconciling["status"] == "False", status
    verdict = kstatus(jobs, name)
    assert verdict["status"] == "Failed", verdict
    assert condition(status, "Submitted")["message"] in verdict["message"]


def put_secret(kube, namespace: str, access_key: str, secret_key: str) -> None:
    secret = client.V1Secret(
        metadata=client.V1ObjectMeta(name=SECRET),
        type="dli.dev/credentials",
        string_data={"accessKey": access_key, "secretKey": secret_key},
    )
    core = client.CoreV1Api(kube.api)
    try:
        core.create_namespaced_secret(namespace, secret)
    except client.ApiException as exc:
        if exc.status != 409:
            raise
        core.replace_namespaced_secret(SECRET, namespace, secret)


def wait_submitted_reason(jobs, name: str, reason: str, timeout: float = 30) -> dict:
    """Wait until the job's Submitted condition has ``reason``; return the status."""
    deadline = time.monotonic() + timeout
    status: dict = {}
    while time.monotonic() < deadline:
        status = jobs.status(name)
        conditions = {c["type"]: c for c in status.get("conditions", [])}
        if conditions.get("Submitted", {}).get("reason") == reason:
            return status
        time.sleep(0.3)
    raise AssertionError(f"{name}: Submitted never had reason {reason}; last status {status}")


def assert_never_shown(secret_key: str, jobs, names, operators) -> None:
    for op in operators:
        assert secret_key not in op.log.read_text(), f"secret key in {op.log}"
    for name in names:
        assert secret_key not in json.dumps(jobs.get(name)), f"secret key in {name}"
        assert secret_key not in json.dumps(jobs.events(name)), f"secret key in Events of {name}"


@pytest.fixture
def bare_operator(start_operator):
    """An operator with no default credentials: only Secrets can sign requests."""
    return start_operator(env=NO_DEFAULTS)


def test_a_missing_secret_is_a_condition_until_the_secret_is_created(jobs, kube, bare_operator):
    jobs.apply("needs-secret", SECRET_REF)
    status = wait_submitted_reason(jobs, "needs-secret", "CredentialsUnavailable")
    message = condition(status, "Submitted")["message"]
    assert f"{jobs.namespace}/{SECRET}" in message
    assert status["phase"] == "Pending"

    def warned(events):
        return any(e["reason"] == "CredentialsUnavailable" for e in events)

    assert warned(jobs.wait_events("needs-secret", warned))
    assert_stalled(jobs, "needs-secret", "CredentialsUnavailable")

    put_secret(kube, jobs.namespace, ACCESS_KEY, SECRET_KEY)
    jobs.wait_phase("needs-secret", "Succeeded", timeout=UNBLOCK_TIMEOUT)
    assert condition(jobs.status("needs-secret"), "Stalled")["status"] == "False"
    assert kstatus(jobs, "needs-secret")["status"] == "Current"
    assert bare_operator.process.poll() is None
    assert_never_shown(SECRET_KEY, jobs, ["needs-secret"], [bare_operator])


def test_rejected_keys_are_a_condition_until_the_secret_is_rotated(
    jobs, kube, emulator, bare_operator
):
    put_secret(kube, jobs.namespace, ACCESS_KEY, WRONG_SECRET_KEY)
    jobs.apply("rotated", SECRET_REF)
    status = wait_submitted_reason(jobs, "rotated", "AuthenticationFailed")
    assert "APIG.0301" in condition(status, "Submitted")["message"]
    assert status["phase"] in ("Pending", "Submitting")
    assert emulator.outcomes()["create"] == {"401": 1}

    def warned(events):
        return any(e["reason"] == "AuthenticationFailed" for e in events)

    assert warned(jobs.wait_events("rotated", warned))
    assert_stalled(jobs, "rotated", "AuthenticationFailed")
    put_secret(kube, jobs.namespace, ACCESS_KEY, SECRET_KEY)
    status = jobs.wait_phase("rotated", "Succeeded", timeout=UNBLOCK_TIMEOUT)
    assert kstatus(jobs, "rotated")["status"] == "Current"
    assert len(status["attempts"]) == 1
    assert len(emulator.created("rotated")) == 1
    assert bare_operator.process.poll() is None
    assert "Traceback" not in bare_operator.log.read_text()
    assert_never_shown(WRONG_SECRET_KEY, jobs, ["rotated"], [bare_operator])
    assert_never_shown(SECRET_KEY, jobs, ["rotated"], [bare_operator])


def test_each_namespace_signs_with_its_own_secret(kube, namespace, jobs, emulator, start_operator):
    other = f"t-{uuid.uuid4().hex[:10]}"
    client.CoreV1Api(kube.api).create_namespace(
        client.V1Namespace(
            metadata=client.V1ObjectMeta(name=other, labels={"dli.dev/test": "true"})
        )
    )
    kube.kubectl(
        "create",
        "rolebinding",
        "dli-operator-secret-reader",
        "-n",
        other,
        "--clusterrole=dli-operator-secret-reader",
        "--serviceaccount=dli-operator-system:dli-operator",
    )
    # The same Secret name in both namespaces: good keys in the test's, bad ones in the other.
    put_secret(kube, namespace, ACCESS_KEY, SECRET_KEY)
    put_secret(kube, other, ACCESS_KEY, WRONG_SECRET_KEY)
    operator = start_operator("--namespace", other, env=NO_DEFAULTS)
    theirs = type(jobs)(kube, other)
    jobs.apply("mine", SECRET_REF)
    theirs.apply("theirs", SECRET_REF)
    jobs.apply("defaulted", {})

    assert jobs.wait_phase("mine", "Succeeded")["phase"] == "Succeeded"
    status = wait_submitted_reason(theirs, "theirs", "AuthenticationFailed")
    assert "APIG.0301" in condition(status, "Submitted")["message"]
    status = wait_submitted_reason(jobs, "defaulted", "CredentialsUnavailable")
    assert "no DLI credentials" in condition(status, "Submitted")["message"]
    assert [j["name"].rsplit("-", 2)[0] for j in emulator.jobs()] == ["mine"]
    assert operator.process.poll() is None
    assert_never_shown(WRONG_SECRET_KEY, theirs, ["theirs"], [operator])
    assert_never_shown(SECRET_KEY, jobs, ["mine", "defaulted"], [operator])
