"""Rewrite the generated tables in README.md (``make docs``); a unit test keeps them current."""

from __future__ import annotations

import re
import sys
from pathlib import Path

from dli_operator.settings import settings_table_markdown
from dli_operator.translate import mapping_table_markdown

README = Path(__file__).resolve().parents[1] / "README.md"
TABLES = {"settings": settings_table_markdown, "mapping": mapping_table_markdown}


def render(text: str) -> str:
    for name, table in TABLES.items():
        pattern = re.compile(rf"(<!-- BEGIN {name} -->\n).*?(<!-- END {name} -->)", re.S)
        text = pattern.sub(lambda m, t=table: m.group(1) + t() + m.group(2), text)
    return text


if __name__ == "__main__":
    current = README.read_text()
    fresh = render(current)
    README.write_text(fresh)
    sys.exit(0)
