"""The results table of docs/reliability.md, from the chaos suite's JSON figures.

    python tests/chaos/report.py [.local/chaos/full.json] [--update docs/reliability.md]
                                 [--section full|short]

Prints a Markdown table; with ``--update``, replaces the text between the
``<!-- chaos-results:SECTION:begin -->`` and ``<!-- chaos-results:SECTION:end -->`` markers of
that file (SECTION: ``full`` unless given).
"""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
MARKER = "<!-- chaos-results:{section}:{end} -->"
ORDER = [
    "sigkill", "ha", "pause-resume", "reshard", "kube-apiserver-restart", "etcd-restart",
    "emulator-restart", "dli-outage", "dli-storm", "hostile-replies", "auth-faults",
]  # fmt: skip
COLUMNS = [
    ("Scenario", "scenario"), ("Scale", "scale"), ("Iterations", "iterations"),
    ("Duplicates", "duplicates"), ("Lost", "lost"), ("Stuck", "stuck"),
    ("Stranded", "stranded"), ("Leaked", "leaked"),
    ("Operator exits", "operator_exits"), ("Secret hits", "secret_hits"),
    ("Peak DLI req/s", "peak_dli_rps"), ("Seconds", "seconds"), ("Commit", "commit"),
]  # fmt: skip


def table(results: dict[str, dict[str, Any]]) -> str:
    names = sorted(results, key=lambda n: (ORDER.index(n) if n in ORDER else len(ORDER), n))
    lines = [
        "| " + " | ".join(title for title, _ in COLUMNS) + " |",
        "|" + "---|" * len(COLUMNS),
    ]
    for name in names:
        row = results[name]
        lines.append("| " + " | ".join(str(row.get(key, "")) for _, key in COLUMNS) + " |")
    notes = [f"- **{n}**: {results[n].get('notes', '')}" for n in names]
    problems = [f"  - {problem}" for n in names for problem in results[n].get("problems", [])[:8]]
    text = "\n".join(lines) + "\n\n" + "\n".join(notes) + "\n"
    if problems:
        text += "\nFindings (first eight per scenario):\n\n" + "\n".join(problems) + "\n"
    return text


def update(document: Path, text: str, section: str) -> None:
    begin = MARKER.format(section=section, end="begin")
    end = MARKER.format(section=section, end="end")
    content = document.read_text()
    pattern = re.compile(re.escape(begin) + ".*?" + re.escape(end), re.DOTALL)
    if not pattern.search(content):
        raise SystemExit(f"{document} has no {begin} ... {end} markers")
    document.write_text(pattern.sub(lambda _: f"{begin}\n{text}{end}", content))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("results", nargs="?", type=Path, default=REPO / ".local/chaos/full.json")
    parser.add_argument("--update", type=Path, help="the Markdown file to update in place")
    parser.add_argument("--section", default="full", help="which results section to replace")
    args = parser.parse_args()
    text = table(json.loads(args.results.read_text()))
    if args.update:
        update(args.update, text, args.section)
    print(text, end="")


if __name__ == "__main__":
    main()
