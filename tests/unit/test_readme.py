"""The README's generated tables are current, and its two commands are the ones CI runs."""

from __future__ import annotations

import importlib.util
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def _render_module():
    spec = importlib.util.spec_from_file_location("render_docs", REPO / "hack" / "render_docs.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_generated_tables_in_the_readme_are_current():
    text = (REPO / "README.md").read_text()
    assert _render_module().render(text) == text, "run `make docs` and commit README.md"


def test_the_readme_names_the_two_commands_and_ci_runs_the_test_one():
    text = (REPO / "README.md").read_text()
    assert "make dev " in text
    assert "make test " in text
    assert "make test" in (REPO / ".ci" / "run").read_text()
