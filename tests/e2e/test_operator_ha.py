"""Two shard replicas: the survivor takes over a killed replica's share, submitting nothing twice.

Both replicas are active, each on its share of the jobs (consistent hashing, membership by
Leases: conftest.Replicas); the Lease is shortened to seconds so the takeover after a SIGKILL
takes seconds. The POSTs in flight at the kill are what the submission fence must settle.
"""

from __future__ import annotations

import time

from tests.e2e.conftest import Replicas

FAIL_FIRST, FAIL_KEY = "spark.dli.emulator.failFirst", "spark.dli.emulator.key"
RUN_SECONDS = "spark.dli.emulator.runSeconds"
FINAL = {"Succeeded", "Failed", "Cancelled"}


def wait_for(what: str, check, timeout: float = 30.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if result := check():
            return result
        time.sleep(0.2)
    raise AssertionError(f"{what}: not within {timeout}s")


def flaky(count: int, *, run_seconds: int, key: str) -> dict[str, dict[str, object]]:
    """``flaky-0``... : each fails its first attempt and succeeds under autoRecovery (the
    emulator counts failures by ``key``, so keys must differ between tests)."""
    return {
        f"flaky-{i}": {
            "autoRecovery": True,
            "maxRetryTimes": 2,
            "conf": {RUN_SECONDS: str(run_seconds), FAIL_FIRST: "1", FAIL_KEY: f"{key}-{i}"},
        }
        for i in range(count)
    }


def submitted_reason(status: dict[str, object]) -> object:
    conditions = status.get("conditions") or []
    assert isinstance(conditions, list)
    return next(c["reason"] for c in conditions if c["type"] == "Submitted")


def test_a_killed_replicas_share_is_taken_over_and_nothing_is_submitted_twice(
    jobs, kube, namespace, emulator, start_operator, audit
):
    replicas = Replicas(kube, namespace, start_operator, {})
    survivor = replicas.replica("survivor")
    victim = replicas.join()

    first = {f"early-{i}": {"conf": {RUN_SECONDS: "3"}} for i in range(4)}
    first |= flaky(3, run_seconds=2, key="flaky")
    jobs.apply_many(first)
    wait_for(
        "the replicas run the first jobs",
        lambda: sum(p == "Running" for p in jobs.phases().values()) >= 3,
    )
    # Creates linger after DLI stored the job, so the kill leaves ambiguous POSTs behind.
    emulator.fault(operation="create", action="delay", when="after", seconds=3, times=100)
    late = {f"late-{i}": {"conf": {RUN_SECONDS: "2"}} for i in range(10)}
    jobs.apply_many(late)
    wait_for(
        "late jobs are being submitted",
        lambda: sum(p == "Submitting" for p in jobs.phases().values()) >= 4,
        timeout=15,
    )
    killed = time.monotonic()
    replicas.leave(victim, kill=True)  # returns once the survivor's ring has only itself
    took_over = time.monotonic() - killed
    final = wait_for(
        "every job finishes",
        lambda: (p := jobs.phases()) and set(p.values()) <= FINAL and p,
        timeout=120,
    )
    finished = time.monotonic() - killed

    assert len(final) == len(first) + len(late)
    assert set(final.values()) == {"Succeeded"}, final
    statuses = audit.one_batch_per_attempt()
    expected = {name: 2 if name.startswith("flaky") else 1 for name in final}
    assert {n: len(s["attempts"]) for n, s in statuses.items()} == expected
    adopted = [n for n, s in statuses.items() if submitted_reason(s) == "Adopted"]
    assert adopted, "no POST in flight at the kill was adopted by the survivor"
    assert survivor.process is not None
    assert survivor.process.poll() is None
    print(
        f"takeover {took_over:.1f}s after the SIGKILL (lease {replicas.lease}s), "
        f"all final {finished:.1f}s after it; adopted by the survivor: {adopted}"
    )


def test_two_unsharded_operators_on_the_same_jobs_never_submit_twice(
    jobs, emulator, start_operator, audit
):
    """An accidental second copy of an unsharded install (two Deployments, a `kubectl scale`
    without the sharding component): both replicas serve every job at once, so the promise of
    one batch per attempt rests on the fence's conditional claim alone. Creates linger after
    DLI stored them and one copy is SIGKILLed and started again mid-run, so the two race on
    every submission, every retry and the adoption of POSTs whose reply never came."""
    first, second = start_operator(), start_operator()
    emulator.fault(operation="create", action="delay", when="after", seconds=1, times=1000)
    specs = {f"plain-{i}": {"conf": {RUN_SECONDS: "2"}} for i in range(16)}
    specs |= flaky(6, run_seconds=1, key="twin-flaky")
    jobs.apply_many(specs)
    wait_for(
        "both copies are submitting",
        lambda: sum(p in {"Submitting", "Starting"} for p in jobs.phases().values()) >= 3,
        timeout=30,
    )
    second.kill()
    second.start()
    final = wait_for(
        "every job finishes",
        lambda: (p := jobs.phases()) and len(p) == len(specs) and set(p.values()) <= FINAL and p,
        timeout=180,
    )
    assert set(final.values()) == {"Succeeded"}, final
    statuses = audit.one_batch_per_attempt()
    expected = {name: 2 if name.startswith("flaky") else 1 for name in final}
    assert {n: len(s["attempts"]) for n, s in statuses.items()} == expected
    assert first.process is not None
    assert first.process.poll() is None, "the first copy exited"
