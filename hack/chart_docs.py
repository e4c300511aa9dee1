"""The Helm chart's generated parts (``make docs``): copies of the repository's CRDs, its version,
its alert rules, and the values table of its README. tests/unit/test_generated.py keeps them
current, so the chart and kustomize (deploy/) never install different things.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

from dli_operator import __version__

REPO = Path(__file__).resolve().parents[1]
CHART = REPO / "deploy" / "helm" / "dli-operator"
RULES = REPO / "deploy" / "components" / "monitoring" / "prometheusrule.yaml"
CHART_RULES = CHART / "files" / "prometheus-rules.yaml"
FINALIZER_POLICY = REPO / "deploy" / "components" / "finalizer-policy" / "policy.yaml"
BASE_RBAC = REPO / "deploy" / "base" / "rbac.yaml"
RBAC_HEADER = """\
# The rules of deploy/base/rbac.yaml (which explains each), copied by `make docs` for
# templates/rbac.yaml: the chart and kustomize grant alike. The base's one ClusterRole is split
# here in what is cluster-scoped (bound cluster-wide) and what lives in the served namespaces
# (bound only there with watchNamespaces).
"""
# Resources of the base's ClusterRole that are not namespaced.
CLUSTER_SCOPED = {"customresourcedefinitions", "namespaces"}
RULES_HEADER = """\
# spec of the chart's PrometheusRule (metrics.rules.enabled), copied by `make docs` from
# deploy/components/monitoring/prometheusrule.yaml: the chart and kustomize alert alike.
"""


def generated_files() -> dict[Path, str]:
    """Every file of the chart that is derived from the repository, with its content."""
    files = {
        CHART / "files" / "crds" / path.name: path.read_text()
        for path in sorted((REPO / "crds").glob("*.yaml"))
        if path.name != "kustomization.yaml"
    }
    if RULES.exists():  # deploy/components/monitoring (docs/observability.md)
        spec = yaml.safe_load(RULES.read_text())["spec"]
        files[CHART_RULES] = RULES_HEADER + yaml.safe_dump(spec, sort_keys=False, width=100)
    files[CHART / "files" / "finalizer-policy.yaml"] = FINALIZER_POLICY.read_text()
    files[CHART / "files" / "rbac-rules.yaml"] = RBAC_HEADER + yaml.safe_dump(
        rbac_rules(), sort_keys=False, width=100
    )
    chart_yaml = CHART / "Chart.yaml"
    files[chart_yaml] = with_version(chart_yaml.read_text(), __version__)
    readme = CHART / "README.md"
    files[readme] = with_values_table(readme.read_text())
    return files


def rbac_rules() -> dict[str, list[dict[str, Any]]]:
    """The rules of each role of deploy/base/rbac.yaml, by the chart's name for the role."""
    roles = {
        (doc["kind"], doc["metadata"]["name"]): doc.get("rules", [])
        for doc in yaml.safe_load_all(BASE_RBAC.read_text())
        if doc and doc["kind"] in ("ClusterRole", "Role")
    }
    operator = roles["ClusterRole", "dli-operator"]
    scoped = [rule for rule in operator if set(rule["resources"]) <= CLUSTER_SCOPED]
    return {
        "cluster": scoped,
        "jobs": [rule for rule in operator if rule not in scoped],
        "shards": roles["Role", "dli-operator-shards"],
        "secretReader": roles["ClusterRole", "dli-operator-secret-reader"],
    }


def with_version(chart_yaml: str, version: str) -> str:
    """Chart.yaml with ``version`` and ``appVersion`` set to the operator's version."""
    text = re.sub(r"(?m)^version: .*$", f"version: {version}", chart_yaml)
    return re.sub(r"(?m)^appVersion: .*$", f'appVersion: "{version}"', text)


def with_values_table(readme: str) -> str:
    pattern = re.compile(r"(<!-- BEGIN values -->\n).*?(<!-- END values -->)", re.S)
    return pattern.sub(lambda m: m.group(1) + values_table() + m.group(2), readme)


def values_table() -> str:
    """One row per value: key, type, default (values.yaml), description (values.schema.json)."""
    schema = json.loads((CHART / "values.schema.json").read_text())
    defaults = yaml.safe_load((CHART / "values.yaml").read_text())
    rows = ["| Key | Type | Default | Description |", "|---|---|---|---|"]
    for key, node in leaves(schema):
        default = json.dumps(lookup(defaults, key))
        allowed = (
            f" One of: {', '.join(f'`{json.dumps(v)}`' for v in node['enum'])}."
            if "enum" in node
            else ""
        )
        text = node.get("description", "") + allowed
        kind = node.get("type", "")
        kind = " or ".join(kind) if isinstance(kind, list) else kind
        rows.append(f"| `{key}` | {kind} | `{default}` | {text} |")
    return "\n".join(rows) + "\n"


def leaves(schema: dict[str, Any], prefix: str = "") -> Iterator[tuple[str, dict[str, Any]]]:
    """Schema nodes that are values (not groups of values), depth first, in schema order."""
    for name, node in schema.get("properties", {}).items():
        key = f"{prefix}{name}"
        if node.get("type") == "object" and "properties" in node:
            yield from leaves(node, key + ".")
        else:
            yield key, node


def lookup(values: dict[str, Any], key: str) -> Any:
    for part in key.split("."):
        values = values[part]
    return values
