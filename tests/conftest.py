"""Shared fixtures: a real Kubernetes control plane for the end-to-end tests.

The control plane is started once per session (only if a test asks for it) with the same code as
``make cluster``. ``DLI_TEST_KUBECONFIG`` points the suite at an existing cluster instead (kind,
k3d, ...). Each test gets its own namespace; namespaces are never reused, because without a
controller-manager a deleted namespace stays Terminating forever.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client, config

from dli_operator import controlplane

REPO = Path(__file__).resolve().parents[1]
CRD_DIR = REPO / "crds"
ESTABLISHED_TIMEOUT_SECONDS = 60.0


@dataclass
class Kube:
    """A reachable cluster: its kubeconfig, an API client, and kubectl bound to it."""

    kubeconfig: Path
    api: client.ApiClient
    crds_applied: bool = field(default=False)

    def kubectl(
        self, *args: str, input: str | None = None, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        """Run kubectl against this cluster; returns the completed process (text mode)."""
        return subprocess.run(
            ["kubectl", f"--kubeconfig={self.kubeconfig}", *args],
            input=input,
            capture_output=True,
            text=True,
            check=check,
            timeout=120,
        )

    def with_token(self, token: str, name: str) -> Kube:
        """The same cluster seen by a bearer token (a ServiceAccount's), not by the admin."""
        cfg = yaml.safe_load(self.kubeconfig.read_text())
        cfg["users"] = [{"name": name, "user": {"token": token}}]
        for ctx in cfg["contexts"]:
            ctx["context"]["user"] = name
        path = self.kubeconfig.with_name(f"kubeconfig-{name}")
        path.write_text(yaml.safe_dump(cfg))
        return Kube(path, config.new_client_from_config(str(path)), self.crds_applied)

    def apply_crds(self) -> None:
        """Apply every CRD in ``crds/`` and wait until each is Established."""
        if self.crds_applied:
            return
        docs = [d for p in sorted(CRD_DIR.glob("*.yaml")) for d in _load(p) if _is_crd(d)]
        for doc in docs:
            self.kubectl(
                "apply", "--server-side", "--force-conflicts", "-f", "-", input=yaml.safe_dump(doc)
            )
        for doc in docs:
            self._wait_established(doc["metadata"]["name"])
        self.crds_applied = True

    def _wait_established(self, name: str) -> None:
        ext = client.ApiextensionsV1Api(self.api)
        deadline = time.monotonic() + ESTABLISHED_TIMEOUT_SECONDS
        while time.monotonic() < deadline:
            crd = ext.read_custom_resource_definition(name)
            conditions = (crd.status and crd.status.conditions) or []
            if any(c.type == "Established" and c.status == "True" for c in conditions):
                return
            time.sleep(0.2)
        raise TimeoutError(f"CRD {name} not Established after {ESTABLISHED_TIMEOUT_SECONDS}s")


def _load(path: Path) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d]


def _is_crd(doc: dict[str, Any]) -> bool:
    return bool(doc.get("kind") == "CustomResourceDefinition")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "/tests/e2e/" in str(item.path):
            item.add_marker(pytest.mark.e2e)
        if "/tests/chaos/" in str(item.path):
            item.add_marker(pytest.mark.e2e)
            item.add_marker(pytest.mark.chaos)


@contextlib.contextmanager
def local_cluster(workdir: Path) -> Iterator[Kube]:
    """A fresh local control plane under ``workdir``, stopped on exit."""
    plane = controlplane.start(workdir)
    api = config.new_client_from_config(str(plane.kubeconfig))
    try:
        yield Kube(plane.kubeconfig, api)
    finally:
        api.close()
        controlplane.stop(workdir)


@pytest.fixture(scope="session")
def kube(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Kube]:
    """The session's cluster: a fresh local control plane, or ``DLI_TEST_KUBECONFIG``."""
    if external := os.environ.get("DLI_TEST_KUBECONFIG"):
        kubeconfig = Path(external)
        yield Kube(kubeconfig, config.new_client_from_config(str(kubeconfig)))
        return
    with local_cluster(tmp_path_factory.mktemp("control-plane")) as cluster:
        yield cluster


@pytest.fixture
def namespace(kube: Kube) -> str:
    """A fresh namespace for one test, with the CRDs applied and Established."""
    kube.apply_crds()
    name = f"t-{uuid.uuid4().hex[:10]}"
    client.CoreV1Api(kube.api).create_namespace(
        client.V1Namespace(metadata=client.V1ObjectMeta(name=name, labels={"dli.dev/test": "true"}))
    )
    return name
