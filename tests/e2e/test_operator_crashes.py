"""The operator killed at random moments, and DLI failing under it: no job is lost or doubled.

Every check ends with the audit of ``/_emulator/jobs``: DLI batches are named
``<name>-<uid8>-<attempt>``, so a POST sent twice for one attempt shows as a duplicated attempt
number, and a lost job as an attempt the status never recorded.

The kill moments come from a seeded ``random.Random``; the seed is printed, and
``DLI_TEST_SEED=<seed>`` replays a run.
"""

from __future__ import annotations

import json
import os
import random
import time
from typing import Any

FAIL_FIRST, FAIL_KEY = "spark.dli.emulator.failFirst", "spark.dli.emulator.key"
OUTCOME, RUN_SECONDS = "spark.dli.emulator.outcome", "spark.dli.emulator.runSeconds"
FINAL = {"Succeeded", "Failed", "Cancelled"}
KILLS = 24
JOBS = 20
# Applied in waves over the first kills, so submissions keep arriving while the operator dies.
WAVE = 2


def seeded() -> random.Random:
    seed = int(os.environ.get("DLI_TEST_SEED") or random.SystemRandom().randrange(2**32))
    print(f"DLI_TEST_SEED={seed}")
    return random.Random(seed)


def plan_jobs(rng: random.Random) -> dict[str, tuple[dict[str, Any], str, int]]:
    """Each job's spec, with the phase and number of attempts it must end with."""
    planned: dict[str, tuple[dict[str, Any], str, int]] = {}
    for i in range(JOBS):
        run = {RUN_SECONDS: str(rng.randint(1, 4))}
        name = f"job-{i:02d}"
        match i % 4:
            case 1:  # dies twice, then succeeds: three attempts
                conf = {**run, FAIL_FIRST: "2", FAIL_KEY: name}
                planned[name] = (
                    {"autoRecovery": True, "maxRetryTimes": 3, "conf": conf},
                    "Succeeded",
                    3,
                )
            case 2:  # always dies: the first attempt and one retry
                conf = {**run, OUTCOME: "dead"}
                planned[name] = (
                    {"autoRecovery": True, "maxRetryTimes": 1, "conf": conf},
                    "Failed",
                    2,
                )
            case _:
                planned[name] = ({"conf": run}, "Succeeded", 1)
    return planned


def wait_all_final(jobs, count: int, timeout: float) -> dict[str, str | None]:
    deadline = time.monotonic() + timeout
    seen: dict[str, str | None] = {}
    while time.monotonic() < deadline:
        seen = jobs.phases()
        if len(seen) == count and all(p in FINAL for p in seen.values()):
            return seen
        time.sleep(0.5)
    unfinished = {k: v for k, v in seen.items() if v not in FINAL}
    raise AssertionError(f"jobs never finished: {unfinished}")


def wait_reason(kube, namespace: str, reason: str, timeout: float = 30.0) -> None:
    """Wait for a Warning Event with ``reason`` on any job of the namespace."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        out = kube.kubectl("get", "events", "-n", namespace, "-o", "json")
        if reason in {e["reason"] for e in json.loads(out.stdout)["items"]}:
            return
        time.sleep(0.3)
    raise AssertionError(f"no job reported {reason} within {timeout}s")


def test_sigkill_at_random_moments_loses_no_job_and_submits_no_attempt_twice(
    jobs, kube, namespace, emulator, start_operator, audit
):
    rng = seeded()
    planned = plan_jobs(rng)
    # Every create lingers after DLI stored the job: a kill in that window leaves an intent
    # whose POST reached DLI, which only an adoption (never a second POST) may resolve.
    emulator.fault(operation="create", action="delay", when="after", seconds=0.7, times=1000)
    waves = [list(planned)[i : i + WAVE] for i in range(0, JOBS, WAVE)]
    started = time.monotonic()
    for kill in range(KILLS):
        if kill < len(waves):
            jobs.apply_many({name: planned[name][0] for name in waves[kill]})
        operator = start_operator()
        time.sleep(rng.uniform(0.5, 4.0))
        operator.kill()
        assert operator.process is not None
        assert operator.process.returncode == -9, "the operator died before it was killed"
    killed_after = time.monotonic() - started
    calls_at_last_kill = emulator.calls()
    start_operator()
    final = wait_all_final(jobs, JOBS, timeout=120)

    statuses = audit.one_batch_per_attempt()
    for name, (_, phase, attempts) in planned.items():
        assert final[name] == phase, f"{name}: {statuses[name]}"
        assert len(statuses[name]["attempts"]) == attempts, f"{name}: {statuses[name]}"
    calls = emulator.calls()
    # Every create DLI answered made a batch, one per attempt (the audit above); a call may
    # also have been cut off by a kill before DLI read its body: counted, never answered.
    answered = emulator.outcomes()["create"]
    assert answered == {"200": sum(attempts for _, _, attempts in planned.values())}, answered
    assert calls["create"] - sum(answered.values()) <= KILLS
    adopted = sum(
        c["type"] == "Submitted" and c["reason"] == "Adopted"
        for status in statuses.values()
        for c in status["conditions"]
    )
    print(
        f"{KILLS} SIGKILLs in {killed_after:.0f}s; at the last kill DLI had {calls_at_last_kill}; "
        f"all {JOBS} jobs final {time.monotonic() - started:.0f}s after the start; calls {calls}; "
        f"{adopted} jobs had their last attempt adopted after a kill"
    )


def test_a_dli_storm_on_polling_delays_running_jobs_but_loses_and_doubles_none(
    jobs, namespace, kube, emulator, operator, audit
):
    names = [f"steady-{i}" for i in range(8)]
    for i, name in enumerate(names):
        conf = {RUN_SECONDS: "6"}
        if i % 3 == 0:  # dies once: its retry is submitted during the storm
            conf |= {FAIL_FIRST: "1", FAIL_KEY: name, RUN_SECONDS: "2"}
        jobs.apply_many({name: {"autoRecovery": True, "maxRetryTimes": 2, "conf": conf}})
    for name in names:
        jobs.wait_phase(name, "Running", timeout=60)
    # More failures in a row than the client's own retries absorb, so the driver sees them:
    # first server errors, then throttling, each until the jobs say so.
    emulator.fault(operation="list", action="respond", status=503, times=6)
    emulator.fault(
        operation="list",
        action="respond",
        status=502,
        times=2,
        body={"error_code": "APIG.0202", "error_msg": "Backend timeout"},
    )
    emulator.fault(operation="show", action="respond", status=500, times=4)
    wait_reason(kube, namespace, "DliUnavailable")
    emulator.fault(operation="list", action="throttle", rate=1, retryAfter=1)
    emulator.fault(operation="show", action="throttle", rate=0.5, retryAfter=1)
    wait_reason(kube, namespace, "RateLimited")
    emulator.clear_faults()
    calmed = time.monotonic()
    final = wait_all_final(jobs, len(names), timeout=90)

    assert set(final.values()) == {"Succeeded"}, final
    statuses = audit.one_batch_per_attempt()
    for i, name in enumerate(names):
        assert len(statuses[name]["attempts"]) == (2 if i % 3 == 0 else 1), statuses[name]
    outcomes = emulator.outcomes()
    # The 502s may still be queued when throttling starts (it answers first): not required.
    assert {"503", "429"} <= set(outcomes["list"]), outcomes
    print(f"all jobs final {time.monotonic() - calmed:.1f}s after the storm; outcomes {outcomes}")
    assert emulator.calls()["create"] == len(names) + len(names[::3])
