"""The Helm chart: lints, renders the default and the full value sets as deploy/ would install,
and refuses wrong values at install (values.schema.json). helm is built from the Go module proxy
(hack/tools/helm.sh) and cached like the control plane.
"""

from __future__ import annotations

import subprocess
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml

from dli_operator import __version__, controlplane
from dli_operator.settings import Settings

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "deploy" / "helm" / "dli-operator"
FULL = REPO / "tests" / "data" / "helm" / "full-values.yaml"
BASE = REPO / "deploy" / "base"
NS = "dli-operator-system"


@cache
def helm_binary() -> str:
    return str(controlplane.build_tool("helm") / "helm")


def helm(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [helm_binary(), *args], capture_output=True, text=True, check=False, timeout=120
    )


def render(*args: str, release: str = "dli-operator") -> list[dict[str, Any]]:
    out = helm("template", release, str(CHART), "-n", NS, "--include-crds", *args)
    assert out.returncode == 0, out.stderr
    return [doc for doc in yaml.safe_load_all(out.stdout) if doc]


def find(docs: list[dict[str, Any]], kind: str, name: str | None = None) -> dict[str, Any]:
    hits = [d for d in docs if d["kind"] == kind and name in (None, d["metadata"]["name"])]
    assert len(hits) == 1, f"{kind}/{name}: {[d['metadata']['name'] for d in hits]}"
    return hits[0]


def base(kind: str, name: str) -> dict[str, Any]:
    docs = [d for p in sorted(BASE.glob("*.yaml")) for d in yaml.safe_load_all(p.read_text())]
    return find([d for d in docs if d and "kind" in d], kind, name)


@pytest.mark.parametrize("values", [[], ["-f", str(FULL)]], ids=["default", "full"])
def test_helm_lint_finds_nothing(values: list[str]) -> None:
    out = helm("lint", "--strict", str(CHART), *values)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "0 chart(s) failed" in out.stdout


def test_the_default_install_is_the_base_operator_with_its_crds_and_rbac() -> None:
    docs = render()
    kinds = sorted(d["kind"] for d in docs)
    assert kinds == sorted(
        # DliBatchJob and ScheduledDliBatchJob (no kopf peering CRDs since issue 18).
        ["CustomResourceDefinition"] * 2
        + ["ServiceAccount", "ConfigMap", "Deployment"]
        + ["ClusterRole"] * 3
        + ["ClusterRoleBinding"] * 2
        + ["Role", "RoleBinding"]  # shard Leases, in the release's namespace only
    )
    for name in ("dlibatchjobs.dli.dev", "scheduleddlibatchjobs.dli.dev"):
        crd = find(docs, "CustomResourceDefinition", name)
        assert crd["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep"
        shipped = yaml.safe_load((REPO / "crds" / f"{name}.yaml").read_text())
        assert crd["spec"] == shipped["spec"]
    deployment = find(docs, "Deployment")
    assert deployment["spec"]["strategy"] == {"type": "Recreate"}
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    assert container["image"] == f"dli-operator:{__version__}"
    assert container["args"] == ["--all-namespaces", "--liveness=http://0.0.0.0:8080/healthz"]
    # One replica owns every job: not sharded, its Leases' namespace set all the same.
    assert [e["name"] for e in container["env"]] == ["DLI_OPERATOR_SHARDING__NAMESPACE"]
    assert [e["secretRef"] for e in container["envFrom"] if "secretRef" in e] == [
        {"name": "dli-credentials", "optional": True}
    ]


# What the chart names or configures its own way; every other key must be deploy/base's.
OWN_POD_KEYS = {"serviceAccountName", "containers"}
OWN_CONTAINER_KEYS = {"image", "args", "envFrom", "env"}


def test_the_pod_spec_is_deploy_bases_hardened_one() -> None:
    chart_pod = find(render(), "Deployment")["spec"]["template"]["spec"]
    base_pod = base("Deployment", "dli-operator")["spec"]["template"]["spec"]
    for key in set(base_pod) - OWN_POD_KEYS:
        assert chart_pod.get(key) == base_pod[key], key
    (chart_main,) = chart_pod["containers"]
    (base_main,) = base_pod["containers"]
    for key in set(base_main) - OWN_CONTAINER_KEYS:
        assert chart_main.get(key) == base_main[key], key


ROLE = {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role"}


def test_the_chart_grants_exactly_the_rbac_of_deploy_base() -> None:
    docs = render()
    cluster = find(docs, "ClusterRole", "dli-operator")["rules"]
    jobs = find(docs, "ClusterRole", "dli-operator-jobs")["rules"]
    assert cluster + jobs == base("ClusterRole", "dli-operator")["rules"]
    bound = {d["roleRef"]["name"] for d in docs if d["kind"] == "ClusterRoleBinding"}
    assert bound == {"dli-operator", "dli-operator-jobs"}
    reader = find(docs, "ClusterRole", "dli-operator-secret-reader")["rules"]
    assert reader == base("ClusterRole", "dli-operator-secret-reader")["rules"]
    shards = find(docs, "Role", "dli-operator-shards")
    assert shards["metadata"]["namespace"] == NS
    assert shards["rules"] == base("Role", "dli-operator-shards")["rules"]
    bindings = [
        (d["metadata"]["namespace"], d["roleRef"]) for d in docs if d["kind"] == "RoleBinding"
    ]
    assert bindings == [(NS, {**ROLE, "name": "dli-operator-shards"})], "no Secret access"


def test_the_chart_defaults_are_the_operators_defaults() -> None:
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    settings = Settings()
    assert values["rateLimit"] == {
        "requestsPerSecond": settings.dli.requests_per_second,
        "burst": settings.dli.burst,
    }
    assert values["polling"] == {
        "intervalSeconds": settings.reconcile.poll_interval_seconds,
        "listPageSize": settings.reconcile.list_page_size,
    }
    assert values["sharding"] == {
        "leaseSeconds": settings.sharding.lease_seconds,
        "renewSeconds": settings.sharding.renew_seconds,
    }
    assert values["metrics"]["port"] == settings.metrics.port


def test_the_full_set_renders_every_option() -> None:
    docs = render("-f", str(FULL))
    workload = find(docs, "StatefulSet", "dli")
    pod = workload["spec"]["template"]["spec"]
    main = next(c for c in pod["containers"] if c["name"] == "operator")
    assert main["image"].startswith("registry.example.com/dli-operator@sha256:")
    assert main["args"][:2] == ["--namespace=team-a", "--namespace=team-b"]
    # Two replicas share the jobs: sharded, each pod's name (HOSTNAME, kept by the StatefulSet)
    # its member id, its Lease in the release's namespace.
    env = {e["name"]: e for e in main["env"]}
    assert env["DLI_OPERATOR_SHARDING__ENABLED"]["value"] == "true"
    assert env["DLI_OPERATOR_SHARDING__NAMESPACE"]["valueFrom"]["fieldRef"] == {
        "fieldPath": "metadata.namespace"
    }
    assert "DLI_OPERATOR_SHARDING__IDENTITY" not in env
    assert workload["spec"]["podManagementPolicy"] == "Parallel"
    assert pod["serviceAccountName"] == "dli-operator-sa"
    assert [v["name"] for v in pod["volumes"]] == ["tmp", "dli-token", "ca"]
    token = pod["volumes"][1]["projected"]["sources"][0]["serviceAccountToken"]
    assert (token["audience"], token["path"]) == ("dli.dev", "token")
    assert [m["mountPath"] for m in main["volumeMounts"]] == [
        "/tmp",
        "/var/run/secrets/dli.dev/serviceaccount",
        "/etc/dli-ca",
    ]
    # Settings and credentials are read at start: a change to either rolls the pods.
    annotations = workload["spec"]["template"]["metadata"]["annotations"]
    assert {"checksum/config", "checksum/credentials"} <= set(annotations)
    config = find(docs, "ConfigMap", "dli-config")["data"]
    assert config["DLI_OPERATOR_DLI__ENDPOINT"] == "http://dli-emulator:8099"
    assert config["DLI_OPERATOR_RECONCILE__RETRY_BACKOFF_SECONDS"] == "20"
    assert config["DLI_OPERATOR_METRICS__PORT"] == "9100"
    # The tenancy policy and the workload identity, as the operator reads them (settings.py).
    assert config["DLI_OPERATOR_POLICY__DEFAULT_CREDENTIALS_NAMESPACES"] == "team-a,team-b"
    assert config["DLI_OPERATOR_POLICY__NAMESPACE_PROJECTS"] == (
        '{"team-a":["0123456789abcdef0123456789abcdef"]}'
    )
    assert config["DLI_OPERATOR_IDENTITY__SOURCE"] == "oidc"
    assert config["DLI_OPERATOR_IDENTITY__IDP_ID"] == "cce-cluster"
    assert (
        config["DLI_OPERATOR_IDENTITY__TOKEN_FILE"]
        == "/var/run/secrets/dli.dev/serviceaccount/token"
    )
    # Served namespaces only: the job rules are bound there, not cluster-wide.
    bindings = {
        (d["metadata"]["namespace"], d["roleRef"]["name"])
        for d in docs
        if d["kind"] == "RoleBinding"
    }
    assert bindings == {
        ("team-a", "dli-jobs"),
        ("team-b", "dli-jobs"),
        ("team-a", "dli-secret-reader"),
        (NS, "dli-shards"),  # shard Leases: the release's namespace only
    }
    assert [d["roleRef"]["name"] for d in docs if d["kind"] == "ClusterRoleBinding"] == ["dli"]
    assert config["DLI_OPERATOR_SHARDING__LEASE_SECONDS"] == "20"
    assert config["DLI_OPERATOR_SHARDING__RENEW_SECONDS"] == "4"
    for kind in ("Service", "PodMonitor", "PrometheusRule", "NetworkPolicy", "Secret"):
        assert [d for d in docs if d["kind"] == kind], kind
    egress = find(docs, "NetworkPolicy")["spec"]["egress"]
    assert {"port": 8443, "protocol": "TCP"} in [p for rule in egress for p in rule["ports"]]
    rules = find(docs, "PrometheusRule")["spec"]["groups"][0]["rules"]
    # Prometheus's own templates pass through Helm untouched.
    assert any("{{ $value" in r["annotations"]["summary"] for r in rules)
    emulator = find(docs, "Deployment", "dli-emulator")
    (container,) = emulator["spec"]["template"]["spec"]["containers"]
    assert container["image"] == f"dli-operator-emulator:{__version__}"


BAD_VALUES = {
    "replicaCount=0": "replicaCount",
    "replicas=2": "replicas",
    "credentials.mode=token": "mode",
    "dli.region=Beijing": "region",
    "dli.endpoint=ftp://dli": "endpoint",
    "image.digest=latest": "digest",
    "metrics.podMonitor.interval=often": "interval",
    "watchNamespaces[0]=Team_A": "watchNamespaces",
    "config.POLL=1": "config",
}


@pytest.mark.parametrize("setting", sorted(BAD_VALUES))
def test_a_wrong_value_fails_at_install_naming_the_key(setting: str) -> None:
    out = helm("template", "x", str(CHART), "--set", setting)
    assert out.returncode != 0
    assert "values don't meet the specifications of the schema" in out.stderr
    assert BAD_VALUES[setting] in out.stderr


@pytest.mark.parametrize(
    "settings",
    [
        ["replicaCount=6"],
        ["credentials.mode=values"],
    ],
    ids=["too-many-replicas", "values-without-keys"],
)
def test_inconsistent_values_fail_at_install(settings: list[str]) -> None:
    out = helm("template", "x", str(CHART), *(a for s in settings for a in ("--set", s)))
    assert out.returncode != 0
    assert "schema" in out.stderr


MAP_API = "admissionregistration.k8s.io/v1/MutatingAdmissionPolicy"


@pytest.mark.parametrize(
    ("args", "rendered"),
    [
        ([], False),  # `helm template` knows no cluster: auto renders nothing
        (["--api-versions", MAP_API], True),  # a 1.36+ cluster
        (["--api-versions", MAP_API, "--set", "finalizerPolicy.enabled=false"], False),
        (["--set", "finalizerPolicy.enabled=true"], True),
    ],
    ids=["auto, not served", "auto, served", "off", "on"],
)
def test_the_finalizer_policy_is_rendered_where_the_api_server_serves_it(
    args: list[str], rendered: bool
) -> None:
    docs = render(*args)
    found = [d for d in docs if d["kind"].startswith("MutatingAdmissionPolicy")]
    if not rendered:
        assert found == []
        return
    kustomize = REPO / "deploy" / "components" / "finalizer-policy" / "policy.yaml"
    shipped = [d for d in yaml.safe_load_all(kustomize.read_text()) if d]
    # The chart's policy is deploy/'s, with the chart's labels: the two never install different
    # things (the copy in files/ is generated, tests/unit/test_generated.py).
    for doc in shipped:
        doc["metadata"]["name"] = "dli-operator-finalizer"  # the release's name, as it happens
        if "policyName" in doc["spec"]:
            doc["spec"]["policyName"] = "dli-operator-finalizer"
    assert [(d["metadata"]["name"], d["spec"]) for d in found] == [
        (d["metadata"]["name"], d["spec"]) for d in shipped
    ]
    assert all(d["metadata"]["labels"]["app.kubernetes.io/instance"] for d in found)


def test_two_releases_install_finalizer_policies_of_their_own() -> None:
    # Cluster-wide objects: with one fixed name the second release's install would fail on
    # the first one's policy (helm: "exists and cannot be imported into the current release").
    on = ("--set", "finalizerPolicy.enabled=true")
    names = [
        sorted(d["metadata"]["name"] for d in render(*on, release=r) if "Admission" in d["kind"])
        for r in ("dli", "team-b")
    ]
    assert names == [["dli-dli-operator-finalizer"] * 2, ["team-b-dli-operator-finalizer"] * 2]
