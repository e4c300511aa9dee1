"""One `kubectl apply -k deploy/overlays/prod` on an empty control plane gives a working operator.

The session's cluster already holds the CRDs other tests applied, so this test starts a control
plane of its own: nothing is served before the apply, as on a new cluster. The operator then runs
as the Deployment says (its arguments, its ServiceAccount's token) and reconciles a job in the
overlay's example namespace.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from tests.conftest import Kube, local_cluster
from tests.e2e.conftest import CLI, FAST, PROJECT_ID, Emulator, Jobs

from dli_operator import controlplane

REPO = Path(__file__).resolve().parents[2]
PROD = REPO / "deploy" / "overlays" / "prod"
SYSTEM_NS, JOBS_NS = "dli-operator-system", "dli-jobs"
CRDS = ("dlibatchjobs.dli.dev", "scheduleddlibatchjobs.dli.dev")


@pytest.fixture(scope="module")
def empty_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Kube]:
    with local_cluster(tmp_path_factory.mktemp("fresh-control-plane")) as cluster:
        yield cluster


def deployment_args(kube: Kube) -> list[str]:
    out = kube.kubectl("get", "deployment", "dli-operator", "-n", SYSTEM_NS, "-o", "json")
    (container,) = json.loads(out.stdout)["spec"]["template"]["spec"]["containers"]
    # No kubelet probes it here, and port 8080 may be taken on a shared machine.
    return [a for a in container["args"] if not a.startswith("--liveness")] + ["--liveness="]


def wait_for(what: str, check: Any, timeout: float = 60.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if result := check():
            return result
        time.sleep(0.3)
    raise AssertionError(f"{what}: not within {timeout}s")


def overlay_policy() -> dict[str, str]:
    """The DLI_OPERATOR_POLICY__* settings the prod overlay's operator.env gives the operator."""
    lines = (PROD / "operator.env").read_text().splitlines()
    pairs = (line.split("=", 1) for line in lines if line.startswith("DLI_OPERATOR_POLICY__"))
    return dict(pairs)


def test_one_apply_of_the_prod_overlay_works_on_an_empty_cluster(
    empty_cluster: Kube, emulator: Emulator, tmp_path: Path
) -> None:
    kube = empty_cluster
    assert kube.kubectl("get", "crd", "-o", "name").stdout.strip() == ""
    applied = kube.kubectl("apply", "--server-side", "-k", str(PROD), check=False)
    assert applied.returncode == 0, applied.stderr
    kube.kubectl(
        "wait", "--for=condition=Established", "--timeout=60s", *(f"crd/{c}" for c in CRDS)
    )

    token = kube.kubectl("create", "token", "dli-operator", "-n", SYSTEM_NS).stdout.strip()
    env = {k: v for k, v in os.environ.items() if not k.startswith("DLI_OPERATOR_")}
    env.update(
        FAST,
        # The overlay's own policy (operator.env): it admits dli-jobs to the default credentials.
        **overlay_policy(),
        KUBECONFIG=str(kube.with_token(token, "dli-operator").kubeconfig),
        DLI_OPERATOR_DLI__ENDPOINT=emulator.url,
        DLI_OPERATOR_DLI__ALLOW_INSECURE_ENDPOINT="true",
        DLI_OPERATOR_DLI__PROJECT_ID=PROJECT_ID,
        DLI_OPERATOR_DLI__ACCESS_KEY="EMULATORAK",
        DLI_OPERATOR_DLI__SECRET_KEY="EMULATORSK",
    )
    log = (tmp_path / "operator.log").open("ab")
    operator = subprocess.Popen(
        [*CLI, "run", *deployment_args(kube)],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        preexec_fn=controlplane.die_with_parent,
    )
    log.close()
    try:
        jobs = Jobs(kube, JOBS_NS)
        kube.kubectl("apply", "-f", "-", input=yaml.safe_dump(jobs.manifest("pi", {})))
        assert jobs.wait_phase("pi", "Succeeded")["state"] == "success"
    finally:
        operator.terminate()
        operator.wait(timeout=30)
