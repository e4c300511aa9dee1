"""The Helm chart against the real API server: every rendered object is accepted (server-side
dry-run), and an install of its CRDs, RBAC and configuration runs an operator, under the chart's
ServiceAccount and with the chart's settings, that reconciles a job.

There is no kubelet here, so the chart's Deployment never runs as a pod: the operator runs as a
process with the Deployment's arguments and the ConfigMap's and Secret's variables.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from tests.e2e.conftest import CLI, FAST, PROJECT_ID, Emulator, Jobs
from tests.unit.test_chart import CHART, FULL, helm_binary

from dli_operator import controlplane

PROMETHEUS_OPERATOR = "github.com/prometheus-operator/prometheus-operator@v0.85.0"
MONITORING_CRDS = ("podmonitors", "prometheusrules")


def rendered(release: str, namespace: str, *args: str) -> list[dict[str, Any]]:
    out = subprocess.run(
        [helm_binary(), "template", release, str(CHART), "-n", namespace, "--include-crds", *args],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    return [doc for doc in yaml.safe_load_all(out.stdout) if doc]


def install_monitoring_crds(kube: Any) -> None:
    """The Prometheus Operator's own CRDs, from its Go module, so PodMonitor and PrometheusRule
    are checked against their real schemas."""
    out = subprocess.run(
        ["go", "mod", "download", "-json", PROMETHEUS_OPERATOR],
        capture_output=True,
        text=True,
        check=True,
        timeout=300,
    )
    folder = Path(json.loads(out.stdout)["Dir"]) / "example" / "prometheus-operator-crd"
    for plural in MONITORING_CRDS:
        path = folder / f"monitoring.coreos.com_{plural}.yaml"
        kube.kubectl("apply", "--server-side", "--force-conflicts", "-f", str(path))
        kube.kubectl("wait", "--for=condition=Established", f"crd/{plural}.monitoring.coreos.com")


def create_namespaces(kube: Any, docs: list[dict[str, Any]]) -> None:
    for name in sorted({d["metadata"]["namespace"] for d in docs if "namespace" in d["metadata"]}):
        kube.kubectl("create", "namespace", name, check=False)


@pytest.mark.parametrize("values", [[], ["-f", str(FULL)]], ids=["default", "full"])
def test_every_rendered_object_is_accepted_by_the_api_server(kube: Any, values: list[str]) -> None:
    install_monitoring_crds(kube)
    docs = rendered("dli-operator", "chart-dry-run", *values)
    create_namespaces(kube, docs)
    out = kube.kubectl(
        "apply",
        "--server-side",
        "--dry-run=server",
        "--force-conflicts",
        "-f",
        "-",
        input=yaml.safe_dump_all(docs),
        check=False,
    )
    assert out.returncode == 0, out.stderr
    # Each object answered: none skipped, none refused.
    assert len([line for line in out.stdout.splitlines() if "(server dry run)" in line]) == len(
        docs
    )


def test_the_chart_installs_an_operator_that_reconciles_a_job(
    kube: Any, namespace: str, emulator: Emulator, tmp_path: Path
) -> None:
    release_ns = f"{namespace}-system"
    settings = {f"config.{k}": v for k, v in FAST.items()} | {
        "watchNamespaces[0]": namespace,
        "secretReaderNamespaces[0]": namespace,
        "policy.defaultCredentialsNamespaces[0]": namespace,
        "dli.endpoint": emulator.url,
        "dli.projectId": PROJECT_ID,
        "credentials.mode": "values",
        "credentials.accessKey": "EMULATORAK",
        "credentials.secretKey": "EMULATORSK",
    }
    args = [a for k, v in settings.items() for a in ("--set-string", f"{k}={v}")]
    args += ["--set", "dli.allowInsecureEndpoint=true"]
    docs = rendered("e2e", release_ns, *args)
    kube.kubectl("create", "namespace", release_ns)
    # Everything but the workload, which no kubelet would run here.
    objects = [d for d in docs if d["kind"] != "Deployment"]
    kube.kubectl(
        "apply", "--server-side", "--force-conflicts", "-f", "-", input=yaml.safe_dump_all(objects)
    )
    kube.kubectl("wait", "--for=condition=Established", "crd/dlibatchjobs.dli.dev")

    deployment = next(d for d in docs if d["kind"] == "Deployment")
    pod = deployment["spec"]["template"]["spec"]
    token = kube.kubectl(
        "create", "token", pod["serviceAccountName"], "-n", release_ns
    ).stdout.strip()
    (container,) = pod["containers"]
    env = {k: v for k, v in os.environ.items() if not k.startswith("DLI_OPERATOR_")}
    for source in container["envFrom"]:
        ref = source.get("configMapRef") or source["secretRef"]
        obj = next(d for d in docs if d["metadata"]["name"] == ref["name"])
        env.update(obj.get("data") or obj.get("stringData") or {})
    env["KUBECONFIG"] = str(kube.with_token(token, "chart-operator").kubeconfig)
    # No kubelet probes it, and port 8080 may be taken on a shared machine.
    run = [a for a in container["args"] if not a.startswith("--liveness")] + ["--liveness="]
    log = (tmp_path / "operator.log").open("ab")
    operator = subprocess.Popen(
        [*CLI, "run", *run],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        preexec_fn=controlplane.die_with_parent,
    )
    log.close()
    try:
        jobs = Jobs(kube, namespace)
        jobs.apply("pi", {})
        assert jobs.wait_phase("pi", "Succeeded")["state"] == "success"
        assert [j["name"] for j in emulator.jobs()] == [jobs.status("pi")["attempts"][0]["jobName"]]
    finally:
        operator.terminate()
        operator.wait(timeout=30)
