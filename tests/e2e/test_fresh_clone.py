"""A newcomer's first hour, as CI can afford it (issue 19): ``hack/fresh-clone.sh --short``.

A clone of HEAD, ``make dev`` in it with a new user's HOME (your pip cache: ``--short``), then
``kubectl dli logs``, ``logs -f`` and ``describe`` on the example job with nothing exported but
PATH, HOME and KUBECONFIG, and ``make dev-down``. The script fails on any step, on a log that
is not the whole driver log, or on a describe that does not show the job Succeeded. The full
form (an empty pip cache) is manual: docs/development.md.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_a_fresh_clone_runs_the_demo_and_kubectl_dli_with_nothing_exported(tmp_path: Path) -> None:
    run = subprocess.run(
        [str(REPO / "hack" / "fresh-clone.sh"), "--short"],
        env={"PATH": os.environ["PATH"], "HOME": str(Path.home()), "TMPDIR": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=280,
    )
    report = run.stdout + run.stderr
    assert run.returncode == 0, report
    for step in ("make-dev", "logs", "logs-follow", "describe", "make-dev-down"):
        assert f"[fresh-clone] {step}: " in report, report
    # make dev's closing lines name what the demo admits and what to try (item 6).
    assert "default credentials: namespace(s) default" in report, report
    assert "kubectl dli logs sparkpi -f" in report, report
    assert report.rstrip().endswith("[fresh-clone] ok"), report
