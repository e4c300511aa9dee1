"""Rewrite every generated file (``make docs``); unit tests keep each one current.

- README.md: the settings and spec-mapping tables.
- docs/api.md: the API reference, from every CRD in crds/ (hack/api_reference.py).
- deploy/helm/dli-operator: the CRD copies, version, alert rules and values table
  (hack/chart_docs.py).
- deploy/**/kustomization.yaml: the image tags, the operator's version.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

# hack/ is a folder of scripts, not a package: its siblings are imported from beside this file.
sys.path.insert(0, str(Path(__file__).resolve().parent))

from api_reference import api_reference
from chart_docs import generated_files

from dli_operator import __version__
from dli_operator.settings import settings_table_markdown
from dli_operator.translate import mapping_table_markdown

REPO = Path(__file__).resolve().parents[1]
README = REPO / "README.md"
API = REPO / "docs" / "api.md"
TABLES = {"settings": settings_table_markdown, "mapping": mapping_table_markdown}
KUSTOMIZATIONS = sorted((REPO / "deploy").glob("**/kustomization.yaml"))


def render(text: str) -> str:
    for name, table in TABLES.items():
        pattern = re.compile(rf"(<!-- BEGIN {name} -->\n).*?(<!-- END {name} -->)", re.S)
        text = pattern.sub(lambda m, t=table: m.group(1) + t() + m.group(2), text)
    return text


def generated() -> dict[Path, str]:
    """Every generated file other than README.md, with its current content."""
    tags = {path: with_image_tags(path.read_text()) for path in KUSTOMIZATIONS}
    return {API: api_reference(), **generated_files(), **tags}


def with_image_tags(kustomization: str) -> str:
    """Every ``newTag`` of a kustomization set to the operator's version (one version source)."""
    return re.sub(r"(?m)^(\s+newTag: ).*$", rf"\g<1>{__version__}", kustomization)


if __name__ == "__main__":
    README.write_text(render(README.read_text()))
    for path, content in generated().items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content)
    sys.exit(0)
