"""The scale benchmark's report: every figure under the command and the machine that made it."""

from __future__ import annotations

from typing import Any

import apimetrics

# Issue 18's targets, printed beside the figures they judge.
SEED_READY_TARGET_S, SEED_RSS_TARGET_MB = 60.0, 1024.0
SHARD_RATIO_TARGET = 1.8


def header(r: dict[str, Any]) -> list[str]:
    m = r["machine"]
    return [
        "",
        f"command: {r['command']}",
        f"machine: {m['cpu']}, {m['cores']} cores, {m['ram_gb']} GB RAM, Linux {m['kernel']}",
        f"         Python {m['python']}, kopf {m['kopf']}, {m['kube-apiserver']}, {m['etcd']}",
        f"load average: before {r['load_before']}, during {r['load_during']}, "
        f"after {r['load_after']}",
        f"operator replicas: {r['replicas']}; CPU: {r['cpu_quota']}",
        "",
    ]


def throughput(r: dict[str, Any]) -> list[str]:
    return [
        f"jobs                      {r['jobs']}  (phases: {r['phases']})",
        f"create                    {r['create']}",
        f"start to first submission {r['start_to_first_submission_seconds']} s",
        f"all submitted after       {r['seconds_to_all_submitted']} s",
        f"all finished after        {r['seconds_to_all_final']} s",
        f"submissions per minute    {r['submissions_per_minute']}",
        f"completions per minute    {r['completions_per_minute']}",
        f"submit latency (s)        {r['submit_latency_seconds']}",
        f"DLI calls                 {r['dli_calls']}  total {r['dli_calls_total']}, "
        f"{r['dli_calls_per_job']} per job",
        f"DLI outcomes              {r['dli_outcomes']}",
        f"audit                     {r['audit']}",
        f"status writes per job     {r['status_writes_per_job']}  (seen by the bench's watch)",
        "status lag (s) by state:",
        *(f"  {state:10} {lag}" for state, lag in r["status_lag_seconds"].items()),
    ]


def seeded(r: dict[str, Any]) -> list[str]:
    if "seed" not in r:
        return []
    op = r["operator"]
    ready = r["start_to_first_submission_seconds"]
    dli, idle = r["seeded_dli"], r["dli_calls_idle"]
    return [
        f"seeded finished jobs      {r['seed']}",
        f"start to ready            {ready} s (operator started to the first live job's "
        f"batchId in status; target <= {SEED_READY_TARGET_S:g} s)",
        f"DLI calls for seeded jobs {dli['calls_answered_404']} answered 404 (unknown batch), "
        f"{dli['batches_created']} batches created for them (target 0 and 0)",
        f"DLI calls when all final  {idle['total']} in {idle['seconds']:g} s {idle['calls']} "
        "(target 0)",
        f"operator RSS              peak {op['peak_rss_mb']} MB, end {op['rss_mb']} MB "
        f"(target <= {SEED_RSS_TARGET_MB:g} MB)",
    ]


def sharding(r: dict[str, Any]) -> list[str]:
    lines = []
    if r["replicas"] > 1:
        lines += [f"  {o}" for o in r["operators"]]
        lines.insert(0, "operator replicas:")
    s = r["stranded"]
    lines.append(
        f"stranded                  {s['stranded']} (not final, no status change for over "
        f"{s['limit_seconds']:g} s; {s['samples']} samples; longest {s['longest_gap_seconds']} s;"
        f" {s['examples']})"
    )
    if r["reshards"]:
        lines.append(f"reshards                  {len(r['reshards'])} (SIGKILL and restart)")
    return lines


def processes(r: dict[str, Any]) -> list[str]:
    return [
        f"operator                  {r['operator']}  log lines {r.get('operator_log_lines')}",
        f"kube-apiserver            {r['kube_apiserver']}",
        f"etcd                      {r['etcd']}",
        f"emulator                  {r['emulator']}",
        f"watch events              {r['watch_events']}",
        f"phase gauge agreed after  {r['gauge_settled_after_seconds']} s "
        f"(at the end: {r['operator_metrics_at_end']})",
    ]


def report(r: dict[str, Any]) -> str:
    lines = [
        *header(r),
        *throughput(r),
        *seeded(r),
        *apimetrics.describe(r.get("apiserver")),
        *sharding(r),
        *processes(r),
        "operator metrics (replica-0):",
        *(f"  {k} {v:g}" for k, v in sorted(r["operator_metrics"].items())),
    ]
    if r.get("timed_out"):
        lines.insert(
            1,
            f"TIMED OUT: {r['submitted_at_end']} submitted, {r['final_at_end']} final "
            f"of {r['jobs']} after {r['settings']['timeout']} s",
        )
    return "\n".join(lines)


def compare(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Throughput of each run against the first (``--replicas 1,2``)."""
    base = runs[0]

    def ratio(r: dict[str, Any], key: str, *, inverse: bool = False) -> float | None:
        a, b = base.get(key), r.get(key)
        if not a or not b:
            return None
        return round(a / b if inverse else b / a, 2)

    return {
        "baseline_replicas": base["replicas"],
        "runs": [
            {
                "replicas": r["replicas"],
                "submissions_per_minute": r["submissions_per_minute"],
                "seconds_to_all_final": r["seconds_to_all_final"],
                "submissions_ratio": ratio(r, "submissions_per_minute"),
                "all_final_speedup": ratio(r, "seconds_to_all_final", inverse=True),
            }
            for r in runs
        ],
    }


def describe_comparison(c: dict[str, Any]) -> str:
    lines = [
        "",
        f"replicas compared with {c['baseline_replicas']} (target >= {SHARD_RATIO_TARGET}x):",
    ]
    for r in c["runs"]:
        lines.append(
            f"  {r['replicas']} replica(s): {r['submissions_per_minute']} submissions/min "
            f"(x{r['submissions_ratio']}), all final after {r['seconds_to_all_final']} s "
            f"(x{r['all_final_speedup']} faster)"
        )
    return "\n".join(lines)
