"""Figures for the scale benchmark: percentiles, the machine, the audit, lags and timeline."""

from __future__ import annotations

import contextlib
import os
import platform
import random
import statistics
import subprocess
from pathlib import Path
from typing import Any

from procs import FINAL, get_text
from watch import Seen

# The timeline's resolution: cumulative submitted and final counts every this many seconds.
TIMELINE_BUCKET_SECONDS = 10


def percentiles(values: list[float]) -> dict[str, float] | None:
    if not values:
        return None
    values = sorted(values)

    def at(q: float) -> float:
        return round(values[min(len(values) - 1, int(q * len(values)))], 2)

    return {
        "n": len(values),
        "min": round(values[0], 2),
        "p50": at(0.50),
        "p90": at(0.90),
        "p99": at(0.99),
        "max": round(values[-1], 2),
        "mean": round(statistics.fmean(values), 2),
    }


def machine(bin_dir: Path) -> dict[str, Any]:
    import kopf

    cpu = "?"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    mem = Path("/proc/meminfo").read_text().splitlines()[0].split()[1]

    def version(binary: str) -> str:
        try:
            out = subprocess.run(
                [str(bin_dir / binary), "--version"], capture_output=True, text=True, timeout=10
            )
            return out.stdout.strip().splitlines()[0]
        except (OSError, IndexError, subprocess.SubprocessError):
            return "?"

    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "ram_gb": round(int(mem) / 1024 / 1024, 1),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "kopf": kopf.__version__ if hasattr(kopf, "__version__") else _dist_version("kopf"),
        "kube-apiserver": version("kube-apiserver"),
        "etcd": version("etcd"),
    }


def _dist_version(name: str) -> str:
    from importlib.metadata import version

    return version(name)


def operator_metrics(port: int) -> dict[str, float]:
    """The operator's own ``dli_operator_*`` series (histograms as _count and _sum only)."""
    out: dict[str, float] = {}
    for line in get_text(f"http://127.0.0.1:{port}/metrics").splitlines():
        if line.startswith("#") or not line.strip():
            continue
        key, _, value = line.rpartition(" ")
        keep = key.startswith("dli_operator_") and "_bucket{" not in key
        keep = keep or key.startswith(("process_", "python_gc_objects_collected"))
        if keep and not key.split("{")[0].endswith("_created"):
            with contextlib.suppress(ValueError):
                out[key] = float(value)
    return out


def audit(
    emulator_jobs: list[dict[str, Any]], items: list[dict[str, Any]]
) -> dict[str, int | list[str]]:
    """Every DliBatchJob must own exactly one DLI job, the one its status names."""
    owners = {o["metadata"]["name"]: o for o in items}
    held: dict[str, list[dict[str, Any]]] = {}
    strays = 0
    for job in emulator_jobs:
        name, uid8, _attempt = (job.get("name") or "").rsplit("-", 2)
        owner = owners.get(name)
        if owner is None or owner["metadata"]["uid"].replace("-", "")[:8] != uid8:
            strays += 1
            continue
        held.setdefault(name, []).append(job)
    duplicates = [n for n, jobs in held.items() if len(jobs) > 1]
    missing = [n for n in owners if n not in held]
    mismatched = [
        n
        for n, jobs in held.items()
        if len(jobs) == 1 and (owners[n].get("status") or {}).get("batchId") != jobs[0]["id"]
    ]
    return {
        "dli_jobs": len(emulator_jobs),
        "objects": len(owners),
        "duplicates": len(duplicates),
        "missing": len(missing),
        "batch_id_mismatch": len(mismatched),
        "strays": strays,
        "examples": (duplicates + missing + mismatched)[:5],
    }


def status_lag(
    seen: dict[str, Seen], emulator_jobs: list[dict[str, Any]], sample: int
) -> dict[str, Any]:
    """Seconds from the emulator's state change to the watch showing it in status.state."""
    by_batch = {s.batch_id: name for name, s in seen.items() if s.batch_id}
    jobs = [j for j in emulator_jobs if j["id"] in by_batch]
    if sample and len(jobs) > sample:
        jobs = random.Random(0).sample(jobs, sample)
    lags: dict[str, list[float]] = {}
    for job in jobs:
        states = seen[by_batch[job["id"]]].states
        for step in job["history"]:
            shown = states.get(step["state"])
            if shown is not None:
                lags.setdefault(step["state"], []).append(shown - step["at"] / 1000)
    return {state: percentiles(values) for state, values in sorted(lags.items())}


def timeline(seen: dict[str, Seen], t0: float) -> dict[str, Any]:
    """Jobs submitted and final so far, every TIMELINE_BUCKET_SECONDS (for the plots)."""
    submitted = [s.submitted - t0 for s in seen.values() if s.submitted]
    final = [
        min(t for p, t in s.phases.items() if p in FINAL) - t0
        for s in seen.values()
        if FINAL & s.phases.keys()
    ]
    end = max([*submitted, *final, 0.0])
    edges = [i * TIMELINE_BUCKET_SECONDS for i in range(int(end // TIMELINE_BUCKET_SECONDS) + 2)]
    return {
        "bucket_seconds": TIMELINE_BUCKET_SECONDS,
        "submitted": [sum(1 for t in submitted if t <= edge) for edge in edges],
        "final": [sum(1 for t in final if t <= edge) for edge in edges],
    }
