"""`helm install`, `helm upgrade` and `helm uninstall` of the chart, with Helm itself, on an empty
control plane of its own (the session's cluster holds CRDs Helm would refuse to adopt).

What this proves beyond tests/e2e/test_chart.py: Helm installs the chart in one step on a fresh
cluster (its crds/ folder first, then the CRD template and everything else), an upgrade changes
the DliBatchJob CRD (the reason it is a template), and an uninstall keeps it.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from tests.conftest import Kube, local_cluster
from tests.unit.test_chart import CHART, helm_binary

RELEASE, NS = "dli", "dli-operator-system"
CRD = "dlibatchjobs.dli.dev"
MARK = "Changed by an upgrade."


@pytest.fixture(scope="module")
def empty_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Kube]:
    with local_cluster(tmp_path_factory.mktemp("helm-control-plane")) as cluster:
        yield cluster


def helm(kube: Kube, *args: str) -> subprocess.CompletedProcess[str]:
    out = subprocess.run(
        [helm_binary(), f"--kubeconfig={kube.kubeconfig}", "-n", NS, *args],
        capture_output=True,
        text=True,
        check=False,
        timeout=180,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    return out


def crd(kube: Kube) -> dict[str, Any]:
    return dict(json.loads(kube.kubectl("get", "crd", CRD, "-o", "json").stdout))


def test_helm_installs_upgrades_the_crd_and_uninstalls_keeping_it(
    empty_cluster: Kube, tmp_path: Path
) -> None:
    kube = empty_cluster
    helm(kube, "install", RELEASE, str(CHART), "--create-namespace")
    names = kube.kubectl("get", "crd", "-o", "name").stdout.split()
    assert sorted(names) == sorted(
        f"customresourcedefinition.apiextensions.k8s.io/{n}"
        for n in (CRD, "scheduleddlibatchjobs.dli.dev")
    )
    assert kube.kubectl("get", "deployment", "dli-dli-operator", "-n", NS).returncode == 0
    # The API server serves MutatingAdmissionPolicy (1.36): `auto` installs the finalizer policy.
    policy = ("mutatingadmissionpolicy", "dli-dli-operator-finalizer")
    assert kube.kubectl("get", *policy).returncode == 0

    # A later release's chart whose CRD changed: `helm upgrade` must carry the change.
    chart = tmp_path / "dli-operator"
    shutil.copytree(CHART, chart)
    crd_file = chart / "files" / "crds" / f"{CRD}.yaml"
    changed = yaml.safe_load(crd_file.read_text())
    changed["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["description"] = MARK
    crd_file.write_text(yaml.safe_dump(changed))
    helm(kube, "upgrade", RELEASE, str(chart))
    assert crd(kube)["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["description"] == MARK

    helm(kube, "uninstall", RELEASE)
    assert crd(kube)["metadata"]["name"] == CRD, "the CRD (and every DliBatchJob) is kept"
    gone = kube.kubectl("get", "deployment", "dli-dli-operator", "-n", NS, check=False)
    assert gone.returncode != 0
    assert kube.kubectl("get", *policy, check=False).returncode != 0
