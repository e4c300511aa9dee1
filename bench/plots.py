"""Pictures of the scale benchmark's recorded runs (bench/results/*.json), for docs/benchmarks.md.

    .venv/bin/python bench/scale.py --plot        # every results file -> bench/results/*.png

Drawn only from what each run recorded, nothing re-measured or made up:
- ``status-lag.png``: per state, the status lag percentiles (p50, p90, p99, max) of every run;
- ``throughput.png``: per run, seconds until every job was submitted and until every job was final;
- ``submit-latency.png``: per run, the percentiles of creation-to-batch-id latency;
- ``timeline-<run>.png``: jobs submitted and final over time, for runs that recorded a
  ``timeline`` (runs from this change on; the older ones kept only their summaries).
Needs the ``bench`` extra (matplotlib).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # files only, no display
import matplotlib.pyplot as plt

STATES = ("starting", "running", "success")
PERCENTILES = (("p50", "o"), ("p90", "s"), ("p99", "^"), ("max", "x"))


def load(results: Path) -> dict[str, dict[str, Any]]:
    """Every run by its short name (the file name before the first dash: A, B, ...)."""
    return {f.stem: json.loads(f.read_text()) for f in sorted(results.glob("*.json"))}


def label(name: str, run: dict[str, Any]) -> str:
    s = run["settings"]
    return f"{name.split('-')[0]}: {s['jobs']} jobs, {s['rps']:g} rps"


def status_lag(runs: dict[str, dict[str, Any]], out: Path) -> Path:
    fig, axes = plt.subplots(1, len(STATES), figsize=(15, 5), sharey=True)
    names = list(runs)
    for ax, state in zip(axes, STATES, strict=True):
        for x, name in enumerate(names):
            lag = (runs[name].get("status_lag_seconds") or {}).get(state)
            if not lag:
                continue
            ax.vlines(x, max(lag["min"], 0.01), lag["max"], color="lightgray")
            for i, (key, marker) in enumerate(PERCENTILES):
                ax.scatter(x, max(lag[key], 0.01), marker=marker, color=f"C{i}")
        ax.set_title(f"state {state}")
        ax.set_xticks(
            range(len(names)), [label(n, runs[n]) for n in names], rotation=60, ha="right"
        )
        ax.set_yscale("log")
        ax.grid(axis="y", alpha=0.3)
    axes[0].set_ylabel("status lag, seconds (DLI state change -> status)")
    handles = [
        plt.Line2D([], [], marker=m, ls="", color=f"C{i}") for i, (_, m) in enumerate(PERCENTILES)
    ]
    fig.legend(handles, [k for k, _ in PERCENTILES], loc="upper left", ncol=4)
    fig.suptitle("Status lag by DLI state, per recorded run (min-max line, percentiles marked)")
    return save(fig, out / "status-lag.png")


def throughput(runs: dict[str, dict[str, Any]], out: Path) -> Path:
    names = list(runs)
    fig, ax = plt.subplots(figsize=(11, 5))
    submitted = [runs[n].get("seconds_to_all_submitted") or 0 for n in names]
    final = [runs[n].get("seconds_to_all_final") or 0 for n in names]
    xs = range(len(names))
    ax.bar([x - 0.2 for x in xs], submitted, width=0.4, label="all submitted")
    ax.bar([x + 0.2 for x in xs], final, width=0.4, label="all final (0: timed out)")
    ax.set_xticks(list(xs), [label(n, runs[n]) for n in names], rotation=30, ha="right")
    ax.set_ylabel("seconds after the operator started")
    ax.set_yscale("log")
    ax.legend()
    ax.set_title("Time to submit and to finish every job, per recorded run")
    return save(fig, out / "throughput.png")


def submit_latency(runs: dict[str, dict[str, Any]], out: Path) -> Path:
    names = list(runs)
    fig, ax = plt.subplots(figsize=(11, 5))
    for i, (key, marker) in enumerate(PERCENTILES):
        xs = [x for x, n in enumerate(names) if runs[n].get("submit_latency_seconds")]
        ys = [max(runs[names[x]]["submit_latency_seconds"][key], 0.01) for x in xs]
        ax.scatter(xs, ys, marker=marker, color=f"C{i}", label=key)
    ax.set_xticks(range(len(names)), [label(n, runs[n]) for n in names], rotation=30, ha="right")
    ax.set_yscale("log")
    ax.set_ylabel("seconds from creation to batch id")
    ax.grid(axis="y", alpha=0.3)
    ax.legend()
    ax.set_title("Submission latency per recorded run")
    return save(fig, out / "submit-latency.png")


def timeline(name: str, run: dict[str, Any], out: Path) -> Path:
    line = run["timeline"]
    step = line["bucket_seconds"]
    times = [i * step for i in range(len(line["submitted"]))]
    fig, ax = plt.subplots(figsize=(9, 4.5))
    ax.plot(times, line["submitted"], label="submitted (batch id in status)")
    ax.plot(times, line["final"], label="final phase in status")
    ax.set_xlabel("seconds after the operator started")
    ax.set_ylabel("jobs")
    ax.grid(alpha=0.3)
    ax.legend()
    ax.set_title(f"Submissions and completions over time: {label(name, run)}")
    return save(fig, out / f"timeline-{name.split('-')[0]}.png")


def save(fig: Any, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


def write_all(results: Path) -> list[Path]:
    """Every picture from every run in ``results``; returns the files written."""
    runs = load(results)
    written = [status_lag(runs, results), throughput(runs, results), submit_latency(runs, results)]
    written += [timeline(n, r, results) for n, r in runs.items() if r.get("timeline")]
    return written
