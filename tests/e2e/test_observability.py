"""Observability end to end: the live operator exports every metric the alerts and the dashboard
use, and ``kubectl dli logs -f`` (run through the real kubectl, as a plugin on PATH) follows a
running job's log until the job is final.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

import yaml

from dli_operator import controlplane

REPO = Path(__file__).resolve().parents[2]
MONITORING = REPO / "deploy/components/monitoring"
VENV_BIN = Path(sys.executable).parent
# The suffixes Prometheus gives a histogram's series (one TYPE line names the family).
HISTOGRAM_SUFFIXES = ("_bucket", "_sum", "_count")
OUR_METRIC = re.compile(r"\bdli_operator_[a-z_]+\b")
# Spark conf keys the emulator reads (docs/emulator.md): keep the job running long enough to follow.
RUN_FOR = {"conf": {"spark.dli.emulator.runSeconds": "8"}}


def used_metric_names() -> set[str]:
    """Every dli_operator_* series named by the alert rules and the dashboard's queries."""
    rules = (MONITORING / "prometheusrule.yaml").read_text()
    exprs = [r["expr"] for g in yaml.safe_load(rules)["spec"]["groups"] for r in g["rules"]]
    board = json.loads((MONITORING / "dashboard.json").read_text())
    exprs += [t["expr"] for p in board["panels"] for t in p.get("targets", [])]
    return {name for expr in exprs for name in OUR_METRIC.findall(expr)}


def exported_names(text: str) -> set[str]:
    """Series names a scrape can hold: each family, and a histogram's suffixed series."""
    names: set[str] = set()
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            _, _, family, kind = line.split()
            names.add(family)
            if kind == "histogram":
                names |= {family + suffix for suffix in HISTOGRAM_SUFFIXES}
            if kind == "counter":
                names.add(family + "_total" if not family.endswith("_total") else family)
        elif line and not line.startswith("#"):
            names.add(line.split("{")[0].split()[0])
    return names


def scrape(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as reply:
        return str(reply.read().decode())


def test_every_metric_the_rules_and_dashboard_use_is_exported_live(
    start_operator: Callable[..., object], jobs
) -> None:
    port = controlplane.free_port()
    start_operator(env={"DLI_OPERATOR_METRICS__PORT": str(port)})
    jobs.apply("counted", {})
    jobs.wait_phase("counted", "Succeeded")
    controlplane.wait_for_port(port)
    deadline = time.monotonic() + 30
    while True:  # the finished job is counted by the step that stored it
        text = scrape(port)
        if 'dli_operator_jobs_finished_total{namespace="",phase="Succeeded"} 1.0' in text:
            break
        assert time.monotonic() < deadline, text
        time.sleep(0.5)
    used = used_metric_names()
    assert len(used) >= 12
    assert used - exported_names(text) == set()
    assert "dli_operator_submission_latency_seconds_count 1.0" in text.replace('{namespace=""}', "")
    # The only replica of an unsharded install is the whole ring: the shard alerts stay quiet.
    assert "dli_operator_shard_member 1.0" in text
    assert "dli_operator_shard_members 1.0" in text
    # Prometheus's own linter on the live exposition: names, units, suffixes, HELP texts.
    promtool = controlplane.build_tool("promtool") / "promtool"
    linted = subprocess.run(
        [str(promtool), "check", "metrics"], input=text, capture_output=True, text=True, timeout=60
    )
    assert linted.returncode == 0, linted.stdout + linted.stderr


def test_kubectl_dli_logs_follows_a_running_job_until_it_is_final(
    kube, namespace: str, jobs, operator, emulator, tmp_path: Path
) -> None:
    jobs.apply("followed", RUN_FOR)
    batch = jobs.wait_phase("followed", "Running")["batchId"]
    env = {
        k: v for k, v in os.environ.items() if not k.startswith(("KUBECTL_DLI_", "HUAWEICLOUD_"))
    }
    env.update(
        PATH=f"{VENV_BIN}{os.pathsep}{env.get('PATH', '')}",
        KUBECONFIG=str(kube.kubeconfig),
        KUBECTL_DLI_ENDPOINT=emulator.url,
        KUBECTL_DLI_ALLOW_INSECURE_ENDPOINT="true",
        HUAWEICLOUD_SDK_AK="EMULATORAK",
        HUAWEICLOUD_SDK_SK="EMULATORSK",
        HUAWEICLOUD_SDK_PROJECT_ID="0123456789abcdef0123456789abcdef",
    )
    errors = tmp_path / "kubectl-dli.stderr"
    with errors.open("w") as stderr:
        follow = subprocess.Popen(
            ["kubectl", "dli", "logs", "followed", "-n", namespace, "-f", "--interval", "0.5"],
            env=env,
            stdout=subprocess.PIPE,
            stderr=stderr,
            text=True,
        )
    assert follow.stdout is not None
    try:
        first = follow.stdout.readline()
        assert "Running Spark version" in first, errors.read_text()
        assert jobs.status("followed")["phase"] == "Running"  # it printed before the end
        rest = follow.stdout.read()  # until kubectl dli exits (pytest's timeout bounds it)
        follow.wait(timeout=30)
    finally:
        follow.kill()
        follow.stdout.close()
    assert follow.returncode == 0, errors.read_text()
    lines = [first.rstrip("\n"), *rest.splitlines()]
    assert f"batch {batch} attempt" in "\n".join(lines)
    assert any("Successfully stopped SparkContext" in line for line in lines)
    assert jobs.status("followed")["phase"] == "Succeeded"
