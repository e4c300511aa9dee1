"""Generated files are current (`make docs`): docs/api.md, and the chart's copies of the CRDs,
its version, alert rules and values table. Each would drift silently otherwise.
"""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from dli_operator import __version__

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "deploy" / "helm" / "dli-operator"


def _render_module() -> Any:
    sys.path.insert(0, str(REPO / "hack"))
    spec = importlib.util.spec_from_file_location("render_docs", REPO / "hack" / "render_docs.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


GENERATED = _render_module().generated()


@pytest.mark.parametrize("path", sorted(GENERATED), ids=lambda p: str(p.relative_to(REPO)))
def test_the_generated_file_is_current(path: Path) -> None:
    assert path.exists(), f"{path} missing: run `make docs`"
    assert path.read_text() == GENERATED[path], f"{path} is stale: run `make docs`"


def test_the_api_reference_covers_every_crd_field_and_reason() -> None:
    text = (REPO / "docs" / "api.md").read_text()
    for path in sorted((REPO / "crds").glob("*.dli.dev.yaml")):
        crd = yaml.safe_load(path.read_text())
        for version in crd["spec"]["versions"]:
            schema = version["schema"]["openAPIV3Schema"]["properties"]
            for part in ("spec", "status"):
                for field in schema[part]["properties"]:
                    assert f"| `{field}` |" in text, f"{part}.{field} missing from docs/api.md"
    from dli_operator.reconcile import Reason

    for name, value in vars(Reason).items():
        if name.isupper():
            row = next(line for line in text.splitlines() if line.startswith(f"| `{value}` |"))
            assert not row.endswith("|  |"), f"reason {value} has no docstring in reconcile.py"


def test_the_chart_version_and_app_version_follow_the_operator() -> None:
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    assert chart["appVersion"] == __version__
    assert chart["version"] == __version__


def test_every_value_has_a_schema_entry_and_a_readme_row() -> None:
    schema = json.loads((CHART / "values.schema.json").read_text())
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    readme = (CHART / "README.md").read_text()

    def keys(node: dict[str, Any], spec: dict[str, Any], prefix: str = "") -> list[str]:
        found = []
        for name, value in node.items():
            assert name in spec.get("properties", {}), f"{prefix}{name}: not in the schema"
            sub = spec["properties"][name]
            if isinstance(value, dict) and "properties" in sub:
                found += keys(value, sub, f"{prefix}{name}.")
            else:
                assert sub.get("description"), f"{prefix}{name}: no description"
                found.append(f"{prefix}{name}")
        return found

    for key in keys(values, schema):
        assert f"| `{key}` |" in readme, f"{key} missing from the chart README: make docs"
