"""The test control plane is a real one: real version, real RBAC, clean teardown."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from kubernetes import client

from dli_operator import controlplane


def test_kubectl_lists_the_builtin_namespaces(kube):
    out = kube.kubectl("get", "ns", "-o", "name").stdout.split()
    assert {"namespace/default", "namespace/kube-system"} <= set(out)


def test_server_is_a_real_kube_apiserver(kube):
    version = client.VersionApi(kube.api).get_code()
    assert version.major == "1"
    assert int(version.minor.rstrip("+")) >= 34


def test_rbac_denies_a_service_account_without_bindings(kube, namespace):
    core = client.CoreV1Api(kube.api)
    core.create_namespaced_service_account(
        namespace, client.V1ServiceAccount(metadata=client.V1ObjectMeta(name="nobody"))
    )
    token = kube.kubectl("create", "token", "nobody", "-n", namespace).stdout.strip()
    denied = kube.with_token(token, "nobody").kubectl("get", "pods", "-n", namespace, check=False)
    assert denied.returncode != 0
    assert "forbidden" in denied.stderr.lower()


@pytest.mark.skipif(bool(os.environ.get("DLI_TEST_KUBECONFIG")), reason="uses the local build")
def test_stop_leaves_no_processes_behind(tmp_path: Path) -> None:
    plane = controlplane.start(tmp_path / "plane")
    pids = [int(p) for p in json.loads(plane.pidfile.read_text()).values()]
    controlplane.stop(tmp_path / "plane")
    for pid in pids:
        assert not Path(f"/proc/{pid}").exists(), f"process {pid} survived stop()"
