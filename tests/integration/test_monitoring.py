"""The alerts and the dashboard's queries, checked by Prometheus's own promtool.

promtool is built from the Go module proxy and cached like the control plane
(hack/tools/promtool.sh). ``check rules`` validates the PrometheusRule's groups; ``test rules``
runs tests/data/monitoring/alerts-test.yaml, which has a firing and a quiet case for every
alert; the dashboard's PromQL is checked by wrapping each query in a recording rule.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from dli_operator.controlplane import build_tool

REPO = Path(__file__).resolve().parents[2]
MONITORING = REPO / "deploy/components/monitoring"
ALERTS_TEST = REPO / "tests/data/monitoring/alerts-test.yaml"
# Grafana's range variable is not PromQL; any duration stands in for it here.
GRAFANA_VARIABLES = {"$__rate_interval": "5m", "$__interval": "1m", "$__range": "1h"}


@pytest.fixture(scope="module")
def promtool() -> Path:
    return build_tool("promtool") / "promtool"


def rule_groups() -> dict[str, Any]:
    spec: dict[str, Any] = yaml.safe_load((MONITORING / "prometheusrule.yaml").read_text())["spec"]
    return spec


def run(promtool: Path, *args: str, cwd: Path) -> str:
    out = subprocess.run(
        [str(promtool), *args], capture_output=True, text=True, cwd=cwd, timeout=120, check=False
    )
    assert out.returncode == 0, out.stdout + out.stderr
    return out.stdout


def test_promtool_checks_the_rules(promtool: Path, tmp_path: Path) -> None:
    (tmp_path / "rules.yaml").write_text(yaml.safe_dump(rule_groups()))
    assert "SUCCESS: 9 rules found" in run(promtool, "check", "rules", "rules.yaml", cwd=tmp_path)


def test_every_alert_has_unit_tests_and_they_pass(promtool: Path, tmp_path: Path) -> None:
    alerts = {r["alert"] for g in rule_groups()["groups"] for r in g["rules"] if "alert" in r}
    cases = yaml.safe_load(ALERTS_TEST.read_text())["tests"]
    tested = {t["alertname"] for case in cases for t in case.get("alert_rule_test", [])}
    firing = {
        t["alertname"]
        for case in cases
        for t in case.get("alert_rule_test", [])
        if t.get("exp_alerts")
    }
    assert alerts == tested == firing
    (tmp_path / "rules.yaml").write_text(yaml.safe_dump(rule_groups()))
    shutil.copy(ALERTS_TEST, tmp_path / "alerts-test.yaml")
    run(promtool, "test", "rules", "alerts-test.yaml", cwd=tmp_path)


def test_a_broken_alert_fails_its_unit_test(promtool: Path, tmp_path: Path) -> None:
    groups = rule_groups()
    for rule in groups["groups"][0]["rules"]:
        if rule.get("alert") == "DliThrottled":
            rule["expr"] = rule["expr"].replace("0.5 *", "0.1 *")
    (tmp_path / "rules.yaml").write_text(yaml.safe_dump(groups))
    shutil.copy(ALERTS_TEST, tmp_path / "alerts-test.yaml")
    out = subprocess.run(
        [str(promtool), "test", "rules", "alerts-test.yaml"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=120,
        check=False,
    )
    assert out.returncode != 0
    assert "DliThrottled" in out.stdout + out.stderr


def dashboard_queries() -> list[str]:
    board = json.loads((MONITORING / "dashboard.json").read_text())
    return [t["expr"] for p in board["panels"] for t in p.get("targets", [])]


def test_every_dashboard_query_is_valid_promql(promtool: Path, tmp_path: Path) -> None:
    rules = []
    for n, expr in enumerate(dashboard_queries()):
        for variable, value in GRAFANA_VARIABLES.items():
            expr = expr.replace(variable, value)
        rules.append({"record": f"dashboard:query_{n}", "expr": expr})
    (tmp_path / "queries.yaml").write_text(
        yaml.safe_dump({"groups": [{"name": "d", "rules": rules}]})
    )
    run(promtool, "check", "rules", "queries.yaml", cwd=tmp_path)


# --- the kustomize component ----------------------------------------------------------------


def render_with_monitoring(tmp_path: Path) -> list[dict[str, Any]]:
    """deploy/base plus the monitoring component, as a user's overlay would combine them."""
    overlay = tmp_path / "overlay"
    overlay.mkdir()
    (overlay / "kustomization.yaml").write_text(
        yaml.safe_dump(
            {
                "apiVersion": "kustomize.config.k8s.io/v1beta1",
                "kind": "Kustomization",
                # kustomize takes relative paths only.
                "resources": [os.path.relpath(REPO / "deploy/base", overlay)],
                "components": [os.path.relpath(MONITORING, overlay)],
            }
        )
    )
    out = subprocess.run(
        ["kubectl", "kustomize", "--load-restrictor=LoadRestrictionsNone", str(overlay)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert out.returncode == 0, out.stderr
    return [doc for doc in yaml.safe_load_all(out.stdout) if doc]


def test_the_component_adds_scraping_rules_and_dashboard_that_match_the_operator(
    tmp_path: Path,
) -> None:
    docs = render_with_monitoring(tmp_path)
    by_kind = {d["kind"]: d for d in docs}
    pod = by_kind["Deployment"]["spec"]["template"]
    pod_labels = pod["metadata"]["labels"]
    ports = {p["name"] for c in pod["spec"]["containers"] for p in c.get("ports", [])}
    monitor, service = by_kind["PodMonitor"], by_kind["Service"]
    assert monitor["spec"]["selector"]["matchLabels"].items() <= pod_labels.items()
    assert {e["port"] for e in monitor["spec"]["podMetricsEndpoints"]} <= ports
    assert service["spec"]["selector"].items() <= pod_labels.items()
    assert {p["targetPort"] for p in service["spec"]["ports"]} <= ports
    board = by_kind["ConfigMap"]
    assert board["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert json.loads(board["data"]["dli-operator.json"])["uid"] == "dli-operator"
    rules = by_kind["PrometheusRule"]["spec"]
    assert rules == rule_groups()
    namespaces = {
        d["metadata"].get("namespace") for d in (monitor, service, board, by_kind["PrometheusRule"])
    }
    assert namespaces == {"dli-operator-system"}
