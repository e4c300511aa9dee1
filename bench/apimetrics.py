"""kube-apiserver's own request counts (``apiserver_request_total``) for the scale benchmark.

The bench scrapes ``/metrics`` with the admin client certificate (``system:masters``, which RBAC
lets read every non-resource URL) at the start and the end of the measured window, and reports
the difference by verb, resource, subresource and code, plus the figures issue 18 asks for: API
writes per job (main resource and status separately) and the share of status writes answered
409 Conflict.
"""

from __future__ import annotations

import re
import urllib.request
from pathlib import Path
from typing import Any

from dli_operator import controlplane

# The resources reported: the jobs themselves, and what the operator writes beside them.
RESOURCES = ("dlibatchjobs", "events", "leases", "secrets")
WRITE_VERBS = frozenset({"POST", "PUT", "PATCH", "DELETE", "APPLY"})
LINE = re.compile(r"^apiserver_request_total\{(?P<labels>[^}]*)\} (?P<value>\S+)$")
LABEL = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')

# (resource, subresource, verb, code) -> requests
Counts = dict[tuple[str, str, str, str], float]


class ApiServerMetrics:
    """Reads kube-apiserver's ``/metrics`` with the control plane's admin certificate."""

    def __init__(self, server: str, pki: Path) -> None:
        self.url = f"{server}/metrics"
        self.context = controlplane.admin_context(pki)

    def scrape(self) -> Counts:
        with urllib.request.urlopen(self.url, context=self.context, timeout=60) as response:
            return parse(response.read().decode())


def parse(text: str) -> Counts:
    """``apiserver_request_total`` for RESOURCES, summed over the labels not kept."""
    counts: Counts = {}
    for line in text.splitlines():
        match = LINE.match(line)
        if not match:
            continue
        labels = dict(LABEL.findall(match["labels"]))
        resource = labels.get("resource", "")
        if resource not in RESOURCES:
            continue
        key = (resource, labels.get("subresource", ""), labels.get("verb", ""), labels["code"])
        counts[key] = counts.get(key, 0.0) + float(match["value"])
    return counts


def delta(before: Counts, after: Counts) -> Counts:
    out = {k: v - before.get(k, 0.0) for k, v in after.items()}
    return {k: v for k, v in out.items() if v}


def summarize(counts: Counts, jobs: int) -> dict[str, Any]:
    """The table by request, and the derived figures for the DliBatchJobs."""

    def total(subresource: str, *, verbs: frozenset[str], code: str | None = None) -> int:
        return int(
            sum(
                v
                for (res, sub, verb, c), v in counts.items()
                if res == "dlibatchjobs"
                and sub == subresource
                and verb in verbs
                and (code is None or c == code)
            )
        )

    # The benchmark itself makes the creates (POST); the operator never creates a DliBatchJob.
    creates = total("", verbs=frozenset({"POST"}))
    main = total("", verbs=WRITE_VERBS - {"POST"})
    status = total("status", verbs=WRITE_VERBS)
    conflicts = total("status", verbs=WRITE_VERBS, code="409")
    per_job = max(jobs, 1)
    return {
        "requests": {
            " ".join(part or "-" for part in key): int(v) for key, v in sorted(counts.items())
        },
        "creates": creates,
        "main_writes": main,
        "status_writes": status,
        "status_409": conflicts,
        "status_409_share": round(conflicts / status, 3) if status else None,
        "main_writes_per_job": round(main / per_job, 2),
        "status_writes_per_job": round(status / per_job, 2),
        "writes_per_job": round((main + status) / per_job, 2),
        "main_gets": total("", verbs=frozenset({"GET"})),
    }


def describe(summary: dict[str, Any] | None) -> list[str]:
    """Report lines: the derived figures, then one line per (resource, subresource, verb, code)."""
    if not summary:
        return ["kube-apiserver requests    (not scraped)"]
    share = summary["status_409_share"]
    lines = [
        f"API writes per job        {summary['writes_per_job']} "
        f"(main resource {summary['main_writes_per_job']}, status "
        f"{summary['status_writes_per_job']}; creates by the bench not counted: "
        f"{summary['creates']})",
        f"409 share of status writes {share if share is None else f'{share:.1%}'} "
        f"({summary['status_409']} of {summary['status_writes']}); "
        f"GETs of the main resource {summary['main_gets']}",
        "kube-apiserver requests (resource subresource verb code: count):",
    ]
    lines += [f"  {key:40} {count}" for key, count in summary["requests"].items()]
    return lines
