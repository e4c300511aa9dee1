"""deploy/: every overlay renders, is locked down, applies to the real control plane, and its RBAC
grants the operator's ServiceAccount what the operator needs and nothing else.

Installs follow docs/install.md to the letter: one `kubectl apply --server-side -k` (the operator
ships no custom resource beside its CRDs; tests/e2e/test_install_fresh.py proves one apply is
enough on an empty control plane). Applies are idempotent, so the tests share the session's
cluster in any order.
"""

from __future__ import annotations

import base64
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"
OVERLAYS = {
    "base": DEPLOY / "base",
    "dev": DEPLOY / "overlays/dev",
    "prod": DEPLOY / "overlays/prod",
}
FINALIZER = "dli.dev/finalizer"
SYSTEM_NS = "dli-operator-system"
SA = f"system:serviceaccount:{SYSTEM_NS}:dli-operator"
CRDS = ("dlibatchjobs.dli.dev", "scheduleddlibatchjobs.dli.dev")
EMULATOR = {
    "DLI_OPERATOR_DLI__PROJECT_ID": "0123456789abcdef0123456789abcdef",
    "DLI_OPERATOR_DLI__ACCESS_KEY": "EMULATORAK",
    "DLI_OPERATOR_DLI__SECRET_KEY": "EMULATORSK",
}


def render(overlay: str | Path) -> list[dict[str, Any]]:
    """A named overlay (``OVERLAYS``), or any kustomization directory, rendered."""
    folder = OVERLAYS[overlay] if isinstance(overlay, str) else overlay
    out = subprocess.run(
        ["kubectl", "kustomize", str(folder)],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr
    assert not out.stderr.strip(), out.stderr
    return [doc for doc in yaml.safe_load_all(out.stdout) if doc]


def find(docs: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    """The one object of this kind named ``name`` (generated ones: as referenced, with hash)."""
    hits = [d for d in docs if d["kind"] == kind and d["metadata"]["name"] == name]
    assert len(hits) == 1, f"{kind}/{name}: {[d['metadata']['name'] for d in hits]}"
    return hits[0]


def container(docs: list[dict[str, Any]], deployment: str) -> dict[str, Any]:
    (only,) = find(docs, "Deployment", deployment)["spec"]["template"]["spec"]["containers"]
    return only


def install(kube: Any, overlay: str) -> None:
    """docs/install.md: one apply, then the CRDs are served."""
    apply = ("apply", "--server-side", "--force-conflicts", "-k", str(OVERLAYS[overlay]))
    out = kube.kubectl(*apply, check=False)
    assert out.returncode == 0, out.stderr
    kube.kubectl(
        "wait", "--for=condition=Established", "--timeout=60s", *(f"crd/{c}" for c in CRDS)
    )


def can_i(kube: Any, *args: str) -> str:
    out = kube.kubectl("auth", "can-i", *args, f"--as={SA}", check=False)
    return out.stdout.strip()


# Kinds that live in the operator's namespace (secret-reader RoleBindings are in jobs' namespaces).
IN_SYSTEM_NAMESPACE = {"Deployment", "ServiceAccount", "Service", "ConfigMap", "Secret", "Role"}


@pytest.mark.parametrize("overlay", sorted(OVERLAYS))
def test_each_overlay_renders_the_operator_with_its_rbac_and_crds(overlay: str) -> None:
    docs = render(overlay)
    for kind, name in [
        ("Namespace", SYSTEM_NS),
        ("ServiceAccount", "dli-operator"),
        ("ClusterRole", "dli-operator"),
        ("ClusterRoleBinding", "dli-operator"),
        ("ClusterRole", "dli-operator-secret-reader"),
        ("Role", "dli-operator-shards"),
        ("RoleBinding", "dli-operator-shards"),
        ("Deployment", "dli-operator"),
        *(("CustomResourceDefinition", crd) for crd in CRDS),
    ]:
        find(docs, kind, name)
    # No custom resource rides along with its CRD: one apply must work on a fresh cluster.
    assert not [d for d in docs if d["apiVersion"].startswith("kopf.dev/")]
    for doc in docs:
        if doc["kind"] in IN_SYSTEM_NAMESPACE:
            assert doc["metadata"]["namespace"] == SYSTEM_NS, doc["metadata"]


def test_the_sharding_component_runs_three_replicas_that_share_the_jobs(tmp_path: Path) -> None:
    """docs/install.md, Replicas and shards: `components: [../../components/sharding]`."""
    (tmp_path / "kustomization.yaml").write_text(
        yaml.safe_dump(
            {
                "apiVersion": "kustomize.config.k8s.io/v1beta1",
                "kind": "Kustomization",
                "resources": [os.path.relpath(OVERLAYS["prod"], tmp_path)],
                "components": [os.path.relpath(DEPLOY / "components" / "sharding", tmp_path)],
            }
        )
    )
    deployment = find(render(tmp_path), "Deployment", "dli-operator")
    assert deployment["spec"]["replicas"] == 3
    # New pods join before old ones leave: a rollout moves shares, never leaves jobs unowned.
    assert deployment["spec"]["strategy"]["rollingUpdate"] == {"maxSurge": 1, "maxUnavailable": 0}
    (main,) = deployment["spec"]["template"]["spec"]["containers"]
    env = {e["name"]: e for e in main["env"]}
    assert env["DLI_OPERATOR_SHARDING__ENABLED"]["value"] == "true"
    # The base's settings stay: the Leases in the operator's namespace, the metrics port; the
    # member id is the pod's name (HOSTNAME), so none is set.
    assert env["DLI_OPERATOR_SHARDING__NAMESPACE"]["valueFrom"]["fieldRef"] == {
        "fieldPath": "metadata.namespace"
    }
    assert "DLI_OPERATOR_METRICS__PORT" in env
    assert "DLI_OPERATOR_SHARDING__IDENTITY" not in env


def test_the_finalizer_policy_component_adds_a_policy_and_its_binding(tmp_path: Path) -> None:
    """docs/install.md, The finalizer policy: `components: [../../components/finalizer-policy]`
    (its effect on a real API server: tests/e2e/test_finalizer_policy.py)."""
    (tmp_path / "kustomization.yaml").write_text(
        yaml.safe_dump(
            {
                "apiVersion": "kustomize.config.k8s.io/v1beta1",
                "kind": "Kustomization",
                "resources": [os.path.relpath(OVERLAYS["prod"], tmp_path)],
                "components": [
                    os.path.relpath(DEPLOY / "components" / "finalizer-policy", tmp_path)
                ],
            }
        )
    )
    docs = render(tmp_path)
    policy = find(docs, "MutatingAdmissionPolicy", "dli-operator-finalizer")
    binding = find(docs, "MutatingAdmissionPolicyBinding", "dli-operator-finalizer")
    assert binding["spec"]["policyName"] == policy["metadata"]["name"]
    assert policy["spec"]["matchConstraints"]["resourceRules"][0]["operations"] == ["CREATE"]
    assert policy["spec"]["failurePolicy"] == "Ignore"
    assert FINALIZER in policy["spec"]["mutations"][0]["applyConfiguration"]["expression"]
    # The base alone has none: API servers before 1.36 do not serve the kind.
    assert not [d for d in render(OVERLAYS["prod"]) if d["kind"].startswith("MutatingAdmission")]


@pytest.mark.parametrize("overlay", sorted(OVERLAYS))
def test_the_operator_runs_non_root_read_only_with_probes_limits_and_metrics(overlay: str) -> None:
    docs = render(overlay)
    deployment = find(docs, "Deployment", "dli-operator")
    pod = deployment["spec"]["template"]["spec"]
    assert (deployment["spec"]["replicas"], deployment["spec"]["strategy"]["type"]) == (
        1,
        "Recreate",
    )
    assert pod["serviceAccountName"] == "dli-operator"
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    main = container(docs, "dli-operator")
    assert main["securityContext"] == {
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "runAsNonRoot": True,
        "privileged": False,
        "capabilities": {"drop": ["ALL"]},
    }
    assert main["args"] == ["--all-namespaces", "--liveness=http://0.0.0.0:8080/healthz"]
    # One replica owns every job; deploy/components/sharding makes it N (test below).
    assert "DLI_OPERATOR_SHARDING__ENABLED" not in {e["name"] for e in main["env"]}
    ports = {p["name"]: p["containerPort"] for p in main["ports"]}
    assert ports == {"healthz": 8080, "metrics": 9090}
    for probe in ("livenessProbe", "readinessProbe"):
        assert main[probe]["httpGet"] == {"path": "/healthz", "port": "healthz"}
    assert set(main["resources"]) == {"requests", "limits"}
    assert {"cpu", "memory"} <= set(main["resources"]["limits"])
    secret_refs = [e["secretRef"] for e in main["envFrom"] if "secretRef" in e]
    assert len(secret_refs) == 1
    assert secret_refs[0]["name"].startswith("dli-credentials")
    assert secret_refs[0]["optional"] is True
    assert [m["mountPath"] for m in main["volumeMounts"]] == ["/tmp"]


@pytest.mark.parametrize("overlay", sorted(OVERLAYS))
def test_the_operator_may_reach_only_the_api_server_dns_and_https(overlay: str) -> None:
    policy = find(render(overlay), "NetworkPolicy", "dli-operator")["spec"]
    assert policy["podSelector"]["matchLabels"]["app.kubernetes.io/component"] == "operator"
    assert set(policy["policyTypes"]) == {"Ingress", "Egress"}
    ports = {(p["port"], p["protocol"]) for rule in policy["egress"] for p in rule["ports"]}
    assert ports == {(53, "UDP"), (53, "TCP"), (443, "TCP"), (6443, "TCP"), (5443, "TCP")}
    assert all("to" not in rule for rule in policy["egress"])


def test_the_dev_emulator_is_reachable_only_from_its_namespace_and_guards_its_control_api() -> None:
    docs = render("dev")
    ingress = find(docs, "NetworkPolicy", "dli-emulator")["spec"]["ingress"]
    assert [rule["from"] for rule in ingress] == [[{"podSelector": {}}]]
    env = {e["name"]: e for e in container(docs, "dli-emulator").get("env", [])}
    ref = env["DLI_EMULATOR_CONTROL_TOKEN"]["valueFrom"]["secretKeyRef"]
    assert find(docs, "Secret", ref["name"])["data"][ref["key"]]


def test_the_workload_identity_component_projects_a_token_the_operator_exchanges(
    tmp_path: Path,
) -> None:
    deploy = Path(os.path.relpath(DEPLOY, tmp_path))
    (tmp_path / "kustomization.yaml").write_text(
        yaml.safe_dump(
            {
                "apiVersion": "kustomize.config.k8s.io/v1beta1",
                "kind": "Kustomization",
                "resources": [str(deploy / "overlays/prod")],
                "components": [str(deploy / "components/workload-identity")],
            }
        )
    )
    docs = render(tmp_path)
    main = container(docs, "dli-operator")
    env = {e["name"]: e.get("value") for e in main["env"]}
    assert env["DLI_OPERATOR_IDENTITY__SOURCE"] == "oidc"
    mounts = {m["name"]: m["mountPath"] for m in main["volumeMounts"]}
    assert env["DLI_OPERATOR_IDENTITY__TOKEN_FILE"] == mounts["dli-token"] + "/token"
    pod = find(docs, "Deployment", "dli-operator")["spec"]["template"]["spec"]
    (volume,) = [v for v in pod["volumes"] if v["name"] == "dli-token"]
    (source,) = volume["projected"]["sources"]
    assert source["serviceAccountToken"]["audience"] == "dli.dev"
    assert source["serviceAccountToken"]["path"] == "token"


def test_the_dev_overlay_wires_the_operator_to_the_emulator() -> None:
    docs = render("dev")
    main = container(docs, "dli-operator")
    config_name = next(e["configMapRef"]["name"] for e in main["envFrom"] if "configMapRef" in e)
    config = find(docs, "ConfigMap", config_name)["data"]
    assert config["DLI_OPERATOR_DLI__ENDPOINT"] == "http://dli-emulator:8099"
    assert config["DLI_OPERATOR_DLI__ALLOW_INSECURE_ENDPOINT"] == "true"
    secret_name = next(e["secretRef"]["name"] for e in main["envFrom"] if "secretRef" in e)
    secret = find(docs, "Secret", secret_name)["data"]
    assert {k: base64.b64decode(v).decode() for k, v in secret.items()} == EMULATOR
    # The emulator is started with the very credentials the operator was given.
    emulator = container(docs, "dli-emulator")
    assert {
        f"--project-id={EMULATOR['DLI_OPERATOR_DLI__PROJECT_ID']}",
        f"--access-key={EMULATOR['DLI_OPERATOR_DLI__ACCESS_KEY']}",
        f"--secret-key={EMULATOR['DLI_OPERATOR_DLI__SECRET_KEY']}",
    } <= set(emulator["args"])
    assert emulator["securityContext"]["readOnlyRootFilesystem"] is True
    service = find(docs, "Service", "dli-emulator")
    assert [(p["port"], p["targetPort"]) for p in service["spec"]["ports"]] == [(8099, "http")]
    pod_labels = find(docs, "Deployment", "dli-emulator")["spec"]["template"]["metadata"]["labels"]
    assert service["spec"]["selector"].items() <= pod_labels.items()
    assert {p["name"]: p["containerPort"] for p in emulator["ports"]} == {"http": 8099}


def test_the_prod_overlay_pins_the_image_and_sets_region_and_project_without_credentials() -> None:
    docs = render("prod")
    main = container(docs, "dli-operator")
    assert main["image"] == "registry.example.com/dli-operator:0.1.0"
    config_name = next(e["configMapRef"]["name"] for e in main["envFrom"] if "configMapRef" in e)
    config = find(docs, "ConfigMap", config_name)["data"]
    assert config["DLI_OPERATOR_DLI__REGION"] == "cn-north-4"
    assert config["DLI_OPERATOR_DLI__PROJECT_ID"]
    assert "DLI_OPERATOR_DLI__ENDPOINT" not in config
    assert "DLI_OPERATOR_DLI__ALLOW_INSECURE_ENDPOINT" not in config
    assert not [d for d in docs if d["kind"] == "Secret"], "prod must not ship credentials"


@pytest.mark.parametrize("overlay", ["base", "dev", "prod"])
def test_each_overlay_applies_to_the_control_plane(kube: Any, overlay: str) -> None:
    install(kube, overlay)
    apps = client.AppsV1Api(kube.api)
    deployment = apps.read_namespaced_deployment("dli-operator", SYSTEM_NS)
    (main,) = deployment.spec.template.spec.containers
    assert main.security_context.read_only_root_filesystem is True
    if overlay == "dev":
        assert apps.read_namespaced_deployment("dli-emulator", SYSTEM_NS)
        service = client.CoreV1Api(kube.api).read_namespaced_service("dli-emulator", SYSTEM_NS)
        assert service.spec.ports[0].port == 8099


LEASE_VERBS = ("get", "list", "watch", "create", "update", "patch", "delete")

ALLOWED = [
    ("get", "dlibatchjobs.dli.dev", "-A"),
    ("list", "dlibatchjobs.dli.dev", "-A"),
    ("watch", "dlibatchjobs.dli.dev", "-A"),
    ("patch", "dlibatchjobs.dli.dev", "-n", "default"),
    ("update", "dlibatchjobs.dli.dev", "-n", "default"),
    ("delete", "dlibatchjobs.dli.dev", "-n", "default"),
    ("get", "dlibatchjobs.dli.dev", "--subresource=status", "-n", "default"),
    ("patch", "dlibatchjobs.dli.dev", "--subresource=status", "-n", "default"),
    ("update", "dlibatchjobs.dli.dev", "--subresource=status", "-n", "default"),
    # The runs of a ScheduledDliBatchJob are DliBatchJobs the operator creates (issue 14).
    ("create", "dlibatchjobs.dli.dev", "-n", "default"),
    ("get", "scheduleddlibatchjobs.dli.dev", "-A"),
    ("list", "scheduleddlibatchjobs.dli.dev", "-A"),
    ("watch", "scheduleddlibatchjobs.dli.dev", "-A"),
    ("patch", "scheduleddlibatchjobs.dli.dev", "-n", "default"),
    ("patch", "scheduleddlibatchjobs.dli.dev", "--subresource=status", "-n", "default"),
    ("update", "scheduleddlibatchjobs.dli.dev", "--subresource=finalizers", "-n", "default"),
    ("create", "events", "-n", "default"),
    ("patch", "events", "-n", "default"),
    ("create", "events.events.k8s.io", "-n", "default"),
    ("list", "customresourcedefinitions.apiextensions.k8s.io"),
    ("watch", "customresourcedefinitions.apiextensions.k8s.io"),
    ("list", "namespaces"),
    ("watch", "namespaces"),
    ("get", "namespaces/default"),
    # Secrets: get only, only where a RoleBinding says so (dev: default; prod: dli-jobs).
    ("get", "secrets", "-n", "default"),
    ("get", "secrets", "-n", "dli-jobs"),
    # Shard membership: one Lease per replica in the operator's namespace (issue 18).
    *((verb, "leases.coordination.k8s.io", "-n", SYSTEM_NS) for verb in LEASE_VERBS),
]
FORBIDDEN = [
    ("get", "secrets", "-n", "kube-system"),
    ("get", "secrets", "-n", SYSTEM_NS),
    ("list", "secrets", "-A"),
    ("list", "secrets", "-n", "default"),
    ("watch", "secrets", "-n", "default"),
    ("create", "secrets", "-n", "default"),
    ("get", "pods", "-n", "default"),
    ("create", "pods", "-A"),
    ("create", "deployments.apps", "-n", "default"),
    ("create", "scheduleddlibatchjobs.dli.dev", "-n", "default"),
    ("delete", "scheduleddlibatchjobs.dli.dev", "-n", "default"),
    ("create", "customresourcedefinitions.apiextensions.k8s.io"),
    ("patch", "customresourcedefinitions.apiextensions.k8s.io"),
    ("delete", "customresourcedefinitions.apiextensions.k8s.io"),
    ("delete", "namespaces"),
    ("create", "namespaces"),
    # Shard Leases: only in the operator's own namespace.
    ("create", "leases.coordination.k8s.io", "-n", "default"),
    ("list", "leases.coordination.k8s.io", "-A"),
    ("create", "rolebindings.rbac.authorization.k8s.io", "-n", "default"),
    ("escalate", "clusterroles.rbac.authorization.k8s.io"),
    ("impersonate", "serviceaccounts", "-A"),
]


@pytest.fixture(scope="module")
def installed(kube: Any) -> Any:
    """dev and prod applied: their RoleBindings are the only Secret access the operator gets."""
    install(kube, "dev")
    install(kube, "prod")
    return kube


@pytest.mark.parametrize("check", ALLOWED, ids=" ".join)
def test_the_service_account_may_do_what_the_operator_needs(installed: Any, check: tuple) -> None:
    assert can_i(installed, *check) == "yes"


@pytest.mark.parametrize("check", FORBIDDEN, ids=" ".join)
def test_the_service_account_may_not_do_anything_else(installed: Any, check: tuple) -> None:
    assert can_i(installed, *check) == "no"


def test_a_token_requested_for_the_service_account_reads_jobs_and_is_refused_pods(
    installed: Any,
) -> None:
    request = client.AuthenticationV1TokenRequest(
        spec=client.V1TokenRequestSpec(audiences=[], expiration_seconds=600)
    )
    token = (
        client.CoreV1Api(installed.api)
        .create_namespaced_service_account_token("dli-operator", SYSTEM_NS, request)
        .status.token
    )
    operator = installed.with_token(token, "dli-operator")
    try:
        who = operator.kubectl("auth", "whoami", "-o", "jsonpath={.status.userInfo.username}")
        assert who.stdout == SA
        jobs = client.CustomObjectsApi(operator.api).list_cluster_custom_object(
            "dli.dev", "v1alpha1", "dlibatchjobs"
        )
        assert jobs["kind"] == "DliBatchJobList"
        with pytest.raises(client.ApiException) as refused:
            client.CoreV1Api(operator.api).list_namespaced_pod("default")
        assert refused.value.status == 403
        with pytest.raises(client.ApiException) as refused:
            client.CoreV1Api(operator.api).list_secret_for_all_namespaces()
        assert refused.value.status == 403
    finally:
        operator.api.close()
