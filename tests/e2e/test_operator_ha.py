"""Two replicas with kopf peering: the standby takes over from a killed active replica.

The peering CRDs are deploy/base/peering.yaml's; each test namespace gets its own KopfPeering
(the operators run with ``--namespace``, so kopf uses the namespaced peering object). The
peering lifetime is shortened through ``DLI_OPERATOR_PEERING__LIFETIME_SECONDS`` so that the
takeover takes seconds instead of kopf's default minute.
"""

from __future__ import annotations

import json
import time

from tests.e2e.conftest import install_peering

PEERING = "dli-operator"
LIFETIME_SECONDS = 5
FAIL_FIRST, FAIL_KEY = "spark.dli.emulator.failFirst", "spark.dli.emulator.key"
RUN_SECONDS = "spark.dli.emulator.runSeconds"
FINAL = {"Succeeded", "Failed", "Cancelled"}


def peers(kube, namespace: str) -> dict[str, dict[str, object]]:
    out = kube.kubectl("get", "kopfpeering", PEERING, "-n", namespace, "-o", "json")
    return dict(json.loads(out.stdout).get("status") or {})


def wait_for(what: str, check, timeout: float = 30.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if result := check():
            return result
        time.sleep(0.2)
    raise AssertionError(f"{what}: not within {timeout}s")


def submitted_reason(status: dict[str, object]) -> object:
    conditions = status.get("conditions") or []
    assert isinstance(conditions, list)
    return next(c["reason"] for c in conditions if c["type"] == "Submitted")


def test_the_standby_replica_takes_over_when_the_active_one_is_killed_and_submits_nothing_twice(
    jobs, kube, namespace, emulator, start_operator, audit
):
    install_peering(kube, namespace)
    env = {"DLI_OPERATOR_PEERING__LIFETIME_SECONDS": str(LIFETIME_SECONDS)}
    peered = ("--peering", PEERING)
    active = start_operator(*peered, "--priority", "100", env=env)
    wait_for("the active replica joins the peering", lambda: len(peers(kube, namespace)) == 1)
    standby = start_operator(*peered, "--priority", "50", env=env)
    wait_for("the standby joins the peering", lambda: len(peers(kube, namespace)) == 2)
    # kopf starts a peered replica paused, and says so only when it resumes.
    time.sleep(1)
    assert "Resuming operations" not in standby.log.read_text()

    first = {f"early-{i}": {"conf": {RUN_SECONDS: "3"}} for i in range(4)}
    first |= {
        f"flaky-{i}": {
            "autoRecovery": True,
            "maxRetryTimes": 2,
            "conf": {RUN_SECONDS: "2", FAIL_FIRST: "1", FAIL_KEY: f"flaky-{i}"},
        }
        for i in range(3)
    }
    jobs.apply_many(first)
    wait_for(
        "the active replica runs the first jobs",
        lambda: sum(p == "Running" for p in jobs.phases().values()) >= 3,
    )
    # Creates linger after DLI stored the job, so the kill leaves ambiguous POSTs behind.
    emulator.fault(operation="create", action="delay", when="after", seconds=3, times=100)
    late = {f"late-{i}": {"conf": {RUN_SECONDS: "2"}} for i in range(5)}
    jobs.apply_many(late)
    wait_for(
        "a late job is being submitted",
        lambda: any(p == "Submitting" for p in jobs.phases().values()),
        timeout=15,
    )
    active.kill()
    killed = time.monotonic()
    at_kill = jobs.phases()
    assert any(p not in FINAL for p in at_kill.values()), "nothing was left to take over"
    assert "Resuming operations" not in standby.log.read_text()

    wait_for("the standby resumes", lambda: "Resuming operations" in standby.log.read_text())
    took_over = time.monotonic() - killed
    final = wait_for(
        "every job finishes",
        lambda: (p := jobs.phases()) and set(p.values()) <= FINAL and p,
        timeout=90,
    )
    finished = time.monotonic() - killed

    assert len(final) == len(first) + len(late)
    assert set(final.values()) == {"Succeeded"}, final
    statuses = audit.one_batch_per_attempt()
    expected = {name: 2 if name.startswith("flaky") else 1 for name in final}
    assert {n: len(s["attempts"]) for n, s in statuses.items()} == expected
    assert emulator.calls()["create"] == sum(expected.values())
    adopted = [n for n, s in statuses.items() if submitted_reason(s) == "Adopted"]
    assert adopted, "no POST in flight at the kill was adopted by the standby"
    assert standby.process is not None
    assert standby.process.poll() is None
    print(
        f"takeover {took_over:.1f}s after the SIGKILL (lifetime {LIFETIME_SECONDS}s), "
        f"all final {finished:.1f}s after it; adopted by the standby: {adopted}"
    )
