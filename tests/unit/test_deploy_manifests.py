"""What deploy/ must promise about the operator's pod, checked against the code's own numbers."""

from __future__ import annotations

from pathlib import Path

import yaml

from dli_operator.handlers import CANCELLATION_TIMEOUT_SECONDS, STOP_GRACE_SECONDS

DEPLOYMENT = Path(__file__).resolve().parents[2] / "deploy" / "base" / "deployment.yaml"
# kopf's cleanup handlers (closing clients) and the process exit, after the daemons stopped.
CLEANUP_SECONDS = 5.0


def test_a_rollout_never_kills_a_step_in_the_middle_of_a_create_call() -> None:
    pod = yaml.safe_load(DEPLOYMENT.read_text())["spec"]["template"]["spec"]
    grace = pod.get("terminationGracePeriodSeconds", 30)  # Kubernetes' default
    assert grace > STOP_GRACE_SECONDS + CANCELLATION_TIMEOUT_SECONDS + CLEANUP_SECONDS


def test_shard_leases_live_where_the_operators_role_allows_them() -> None:
    (main,) = yaml.safe_load(DEPLOYMENT.read_text())["spec"]["template"]["spec"]["containers"]
    env = {e["name"]: e for e in main["env"]}
    source = env["DLI_OPERATOR_SHARDING__NAMESPACE"]["valueFrom"]["fieldRef"]
    assert source == {"fieldPath": "metadata.namespace"}
    docs = list(yaml.safe_load_all((DEPLOYMENT.parent / "rbac.yaml").read_text()))
    (role,) = [d for d in docs if d["kind"] == "Role"]
    assert role["rules"] == [
        {
            "apiGroups": ["coordination.k8s.io"],
            "resources": ["leases"],
            "verbs": ["get", "list", "watch", "create", "update", "patch", "delete"],
        }
    ]
    (binding,) = [d for d in docs if d["kind"] == "RoleBinding"]
    assert binding["metadata"]["namespace"] == role["metadata"]["namespace"]
    assert binding["roleRef"]["name"] == role["metadata"]["name"]
