"""The chaos suite (issue 10): the operator, the control plane and the DLI emulator as real
processes, driven through faults; every scenario ends with the same audit (conftest.Audit):

- each DliBatchJob is final, or running while DLI runs it, and agrees with its DLI batch;
- exactly one DLI batch per attempt (``/_emulator/jobs``; batches are ``<name>-<uid8>-<n>``);
- no job forgotten (a batch no status records, a status pointing at no batch) or stuck;
- the batches of deleted jobs are not left running; no operator exit it did not ask for;
- no AK, SK or token in the operator logs, the Events or the statuses.

``DLI_CHAOS_SCALE=short`` (default; part of ``make test``) or ``full`` (``make chaos``). Each
scenario prints a ``CHAOS {...}`` line and stores its figures for docs/reliability.md
(tests/chaos/report.py). Random moments come from a seeded generator: ``DLI_TEST_SEED``
replays a run.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from dli_operator import controlplane

from .conftest import (
    ACCESS_KEY,
    SECRET_KEY,
    Audit,
    ChaosEmulator,
    Record,
    Timings,
    assert_clean,
    e2e,
    scaled,
)

pytestmark = [pytest.mark.chaos, pytest.mark.timeout(3600)]

RUN_SECONDS, OUTCOME = "spark.dli.emulator.runSeconds", "spark.dli.emulator.outcome"
FAIL_FIRST, FAIL_KEY = "spark.dli.emulator.failFirst", "spark.dli.emulator.key"
ERROR_BODY = {"error_code": "DLI.0999", "error_msg": "Internal error (sent with HTTP 200)"}
MANY = 10**9  # "times" of a rule meant to last until cleared
# How long a freshly started operator (or one whose control plane or DLI just came back) may
# take before it serves its jobs: process start, login, first watch; a loaded 2-core machine.
STARTUP_SECONDS = 15.0


def seeded() -> random.Random:
    seed = int(os.environ.get("DLI_TEST_SEED") or random.SystemRandom().randrange(2**32))
    print(f"DLI_TEST_SEED={seed}")
    return random.Random(seed)


def mixed_jobs(
    rng: random.Random, count: int, prefix: str = "job", long: tuple[int, int] = (20, 40)
) -> dict[str, dict[str, Any]]:
    """Jobs that succeed, recover from a death, always die, or run ``long`` (to cancel)."""
    specs: dict[str, dict[str, Any]] = {}
    for i in range(count):
        name = f"{prefix}-{i:03d}"
        run = {RUN_SECONDS: str(rng.randint(1, 6))}
        match i % 5:
            case 1:
                conf = {**run, FAIL_FIRST: "1", FAIL_KEY: name}
                specs[name] = {"autoRecovery": True, "maxRetryTimes": 2, "conf": conf}
            case 2:
                specs[name] = {
                    "autoRecovery": True,
                    "maxRetryTimes": 1,
                    "conf": {**run, OUTCOME: "dead"},
                }
            case 3:
                specs[name] = {"conf": {RUN_SECONDS: str(rng.randint(*long))}}
            case _:
                specs[name] = {"conf": run}
    return specs


def started(ops: list[Any], audit: Audit, op: Any) -> Any:
    ops.append(op)
    audit.logs.append(op.log)
    audit.progress.excuse(STARTUP_SECONDS)  # no job is served until it is up
    return op


def finish(
    audit: Audit, ops: list[Any], record: Record, scenario: str, iterations: int, began: float,
    *, timeout: float, notes: str = "", settle_also: frozenset[str] = frozenset(),
) -> None:  # fmt: skip
    """Wait for the jobs to settle, audit, record the figures, and fail on any finding."""
    audit.wait_settled(timeout, also=settle_also)
    found = audit.run(ops)
    record(scenario, iterations, found, began, notes)
    assert_clean(found)


def test_sigkill_of_the_operator_at_random_moments(
    jobs, kube, namespace, emulator: ChaosEmulator, start_operator, audit: Audit, record: Record
) -> None:
    """Across submit (creates linger 0.7 s after DLI stored the job), poll, retry, suspend
    (cancel), and delete (cancel, then finalizer removal)."""
    rng, began, ops = seeded(), time.monotonic(), []
    kills, count = scaled(6, 100), scaled(10, 40)
    specs = mixed_jobs(rng, count)
    emulator.fault(operation="create", action="delay", when="after", seconds=0.7, times=MANY)
    names = list(specs)
    waves = [names[i :: max(1, kills // 2)] for i in range(max(1, kills // 2))]
    long_ones = [n for n in names if int(specs[n]["conf"].get(RUN_SECONDS, 0)) >= 20]
    to_delete, to_suspend = long_ones[::2], long_ones[1::2]
    for kill in range(kills):
        if kill < len(waves) and waves[kill]:
            jobs.apply_many({n: specs[n] for n in waves[kill]})
        if kill == kills // 2:
            for name in to_delete:
                audit.forget(name)
                jobs.delete(name, wait=False)
            for name in to_suspend:
                jobs.patch(name, {"suspend": True})
        op = started(ops, audit, start_operator())
        time.sleep(rng.uniform(1.0, 5.0))
        op.kill()
    started(ops, audit, start_operator())
    _wait_gone(jobs, to_delete, timeout=scaled(90, 300))
    finish(
        audit, ops, record, "sigkill", kills, began, timeout=scaled(150, 600),
        settle_also=frozenset({"Suspended"}),
        notes=f"{count} jobs; {len(to_delete)} deleted and {len(to_suspend)} suspended mid-run",
    )  # fmt: skip


def test_ha_sharded_replicas_killed_stopped_or_paused_at_random_moments(
    jobs, kube, namespace, emulator: ChaosEmulator, start_operator, audit: Audit, record: Record
) -> None:
    """Every replica is active on its share of the jobs (Lease shards, issue 18: conftest's
    ``e2e.Replicas``). Every 3-8 s a random replica is SIGKILLed or SIGTERMed and a new one
    joins, before or after it leaves (so two or three serve), or it is SIGSTOPped past its
    Lease and woken: the stale-owner case, which must fence itself until it renewed."""
    rng, began, ops = seeded(), time.monotonic(), []
    replicas = e2e.Replicas(kube, namespace, start_operator, {})
    started(ops, audit, replicas.replica("ha-0"))
    started(ops, audit, replicas.join())
    count, disruptions = scaled(20, 200), scaled(3, 20)
    jobs.apply_many(mixed_jobs(rng, count, prefix="ha"))
    emulator.fault(operation="create", action="delay", when="after", seconds=0.5, times=MANY)
    done = {"SIGKILL": 0, "SIGTERM": 0, "SIGSTOP": 0}
    for turn in range(disruptions):
        time.sleep(rng.uniform(3.0, 8.0))
        victim = rng.choice(list(replicas.serving.values()))
        how = ("SIGKILL", "SIGTERM", "SIGSTOP")[turn % 3]
        done[how] += 1
        audit.progress.excuse(replicas.gap_seconds)
        if how == "SIGSTOP":
            replicas.pause(victim, replicas.lease + rng.uniform(1.0, 4.0))
        elif rng.random() < 0.5:
            started(ops, audit, replicas.join())
            replicas.leave(victim, kill=how == "SIGKILL")
        else:
            replicas.leave(victim, kill=how == "SIGKILL")
            started(ops, audit, replicas.join())
        audit.progress.excuse(replicas.gap_seconds)
    finish(
        audit, ops, record, "ha", disruptions, began, timeout=scaled(180, 900),
        notes=f"{count} jobs on two or three shard replicas (Lease {replicas.lease}s); "
        f"a random replica {done['SIGKILL']} times SIGKILLed and {done['SIGTERM']} times "
        f"SIGTERMed (each time a new replica joined), {done['SIGSTOP']} times SIGSTOPped past "
        f"its Lease and woken; {ring_changes(ops)} ring changes seen, {adopted(audit)} creates "
        "in flight adopted",
    )  # fmt: skip


def test_reshard_three_replicas_one_killed_and_restarted_again_and_again(
    jobs, kube, namespace, emulator: ChaosEmulator, start_operator, audit: Audit, record: Record
) -> None:
    """Issue 18: three shard replicas under a stream of jobs; again and again one of them, at
    random, is SIGKILLed and started again under its own name (a StatefulSet pod coming back):
    either at once, so the new process finds its Lease still live and its claims made, or once
    its share moved to the other two (the ring reshards twice). Every create lingers 0.5 s
    after DLI stored it (2 s), so kills land between a POST and its reply; the moving jobs must
    go through the submission fence: one batch per attempt, none stranded."""
    rng, began, ops = seeded(), time.monotonic(), []
    count, cycles = scaled(30, 300), scaled(2, 12)
    # The short form's long runs only need to outlast a cycle (make test's time budget).
    specs = mixed_jobs(rng, count, prefix="rs", long=(scaled(6, 20), scaled(12, 40)))
    names = list(specs)
    waves = [names[i :: cycles + 1] for i in range(cycles + 1)]
    emulator.fault(operation="create", action="delay", when="after", seconds=2, times=MANY)
    jobs.apply_many({n: specs[n] for n in waves[0]})
    replicas = e2e.Replicas(kube, namespace, start_operator, {})
    for op in replicas.replicas("shard-0", "shard-1", "shard-2"):
        started(ops, audit, op)
    moved = 0
    for cycle in range(cycles):
        jobs.apply_many({n: specs[n] for n in waves[cycle + 1]})
        time.sleep(rng.uniform(0.5, 4.0))  # creates of the new wave may be in flight
        victim = rng.choice(list(replicas.serving.values()))
        audit.progress.excuse(replicas.gap_seconds)
        after_move = rng.random() < 0.5
        moved += after_move
        started(ops, audit, replicas.restart(victim, moved=after_move))
        audit.progress.excuse(replicas.gap_seconds)
    finish(
        audit, ops, record, "reshard", cycles, began, timeout=scaled(180, 900),
        notes=f"{count} jobs in {cycles + 1} waves on three shard replicas (Lease "
        f"{replicas.lease}s); {cycles} times a random one SIGKILLed and restarted under its "
        f"name, {moved} of them after its share moved; {ring_changes(ops)} ring changes "
        f"seen, {adopted(audit)} creates in flight adopted",
    )  # fmt: skip


def test_pause_resume_inside_the_stop_grace_with_a_backlog_in_the_limiter(
    jobs, kube, namespace, emulator: ChaosEmulator, start_operator, audit: Audit, record: Record
) -> None:
    """Issue 18: a replica joins (taking the jobs over) and leaves again, SIGKILLed and then
    SIGTERMed, each time within seconds, while a low DLI rate keeps a queue in the limiter: the
    resumes land inside the stop grace (40 s) of steps still waiting for a request slot. How a
    replica joins and leaves is ``e2e.Replicas``'s business (Lease shards)."""
    rng, began, ops = seeded(), time.monotonic(), []
    # The issue's recipe per cycle: a replica joins, is SIGKILLed, joins again, leaves (SIGTERM).
    count, cycles, rate, poll = scaled(50, 150), scaled(1, 4), float(scaled(2, 4)), 2.0
    # One list refresh per poll goes first (urgent reads); two replicas may split the budget.
    submit_rate = (rate - 1 / poll) / 2
    audit.progress.timings = Timings(poll_seconds=poll, dli_rate=submit_rate, floor_seconds=10.0)
    env = {
        "DLI_OPERATOR_DLI__REQUESTS_PER_SECOND": str(rate),
        "DLI_OPERATOR_DLI__BURST": "1",
        "DLI_OPERATOR_RECONCILE__POLL_INTERVAL_SECONDS": str(poll),
    }
    replicas = e2e.Replicas(kube, namespace, start_operator, env)
    started(ops, audit, replicas.replica("first"))
    jobs.apply_many(mixed_jobs(rng, count, prefix="pr"))
    _wait(lambda: len(emulator.jobs()) >= 3, 60, "the first submissions")
    for _ in range(cycles):
        for kill in (True, False):
            joiner = started(ops, audit, replicas.join())
            audit.progress.excuse(replicas.gap_seconds)
            time.sleep(rng.uniform(2.0, 5.0))
            replicas.leave(joiner, kill=kill)
            audit.progress.excuse(replicas.gap_seconds)
            time.sleep(rng.uniform(1.0, 3.0))
    # Jobs with no batch yet (a job's retries are more batches of the same name).
    backlog = count - len({batch["name"].rsplit("-", 2)[0] for batch in emulator.jobs()})
    finish(
        audit, ops, record, "pause-resume", 2 * cycles, began,
        timeout=count / submit_rate + 90,
        notes=f"{count} jobs at {rate:.0f} DLI req/s (burst 1, poll {poll:.0f}s); "
        f"{2 * cycles} times a replica joined and left within seconds (SIGKILL, SIGTERM), "
        f"{backlog} jobs still unsubmitted after the last",
    )  # fmt: skip


@pytest.mark.parametrize("component", ["kube-apiserver", "etcd"])
def test_control_plane_restarts(
    component: str, jobs, kube, namespace, emulator, start_operator, audit: Audit, record: Record
) -> None:
    pids = kube.kubeconfig.parent / "pids.json"
    if os.environ.get("DLI_TEST_KUBECONFIG") or not pids.exists():
        pytest.skip("needs the suite's own control plane to restart")
    rng, began, ops = seeded(), time.monotonic(), []
    count, restarts = scaled(6, 30), scaled(1, 3)
    jobs.apply_many(mixed_jobs(rng, count, prefix="cp"))
    started(ops, audit, start_operator())
    for _ in range(restarts):
        time.sleep(rng.uniform(2.0, 6.0))
        restart_control_plane_process(kube, component)
        audit.progress.excuse(STARTUP_SECONDS)  # the operator's watches reconnect
    finish(
        audit, ops, record, f"{component}-restart", restarts, began, timeout=scaled(150, 400),
        notes=f"{count} jobs; SIGKILL and restart of {component}",
    )  # fmt: skip


def test_emulator_restart_with_its_state_file(
    jobs, kube, namespace, emulator: ChaosEmulator, start_operator, audit: Audit, record: Record
) -> None:
    rng, began, ops = seeded(), time.monotonic(), []
    count, restarts = scaled(6, 30), scaled(2, 5)
    jobs.apply_many(mixed_jobs(rng, count, prefix="emu"))
    started(ops, audit, start_operator())
    for _ in range(restarts):
        time.sleep(rng.uniform(2.0, 6.0))
        emulator.stop(signal.SIGKILL)
        time.sleep(rng.uniform(0.5, 3.0))
        emulator.start()
        audit.progress.excuse(STARTUP_SECONDS)  # error backoffs run out first
    finish(
        audit, ops, record, "emulator-restart", restarts, began, timeout=scaled(150, 400),
        notes=f"{count} jobs; SIGKILL of the emulator, restarted from its state file",
    )  # fmt: skip


def test_a_dli_outage_keeps_the_request_rate_bounded_and_jobs_resume(
    jobs, kube, namespace, emulator: ChaosEmulator, start_operator, audit: Audit, record: Record
) -> None:
    """Connection refused for the whole outage; the operator's own counters say what it sent."""
    rng, began, ops = seeded(), time.monotonic(), []
    count, outage = scaled(6, 30), scaled(20, 120)
    port = controlplane.free_port()
    env = {
        "DLI_OPERATOR_METRICS__PORT": str(port),
        "DLI_OPERATOR_RECONCILE__POLL_INTERVAL_SECONDS": "5",
        "DLI_OPERATOR_RECONCILE__ERROR_BACKOFF_SECONDS": "5",
    }
    audit.progress.timings = Timings(poll_seconds=5.0)
    specs = {n: {"conf": {RUN_SECONDS: str(rng.randint(outage // 2, outage))}} for n in
             (f"out-{i:03d}" for i in range(count))}  # fmt: skip
    jobs.apply_many(specs)
    started(ops, audit, start_operator(env=env))
    _wait(lambda: sum(p == "Running" for p in jobs.phases().values()) == count, 120, "all running")
    before = dli_requests(port)
    emulator.stop()
    time.sleep(outage)
    during = dli_requests(port) - before
    emulator.start()
    audit.progress.excuse(STARTUP_SECONDS)  # error backoffs run out first
    per_job_minute = during / count / (outage / 60)
    finish(
        audit, ops, record, "dli-outage", 1, began, timeout=scaled(150, 400),
        notes=f"{count} running jobs, {outage}s of connection refused: {during:.0f} DLI "
        f"requests, {per_job_minute:.1f} per job per minute (poll interval 5s)",
    )  # fmt: skip
    assert per_job_minute <= 60, "a tight retry loop during the outage"


def test_a_dli_storm_with_many_jobs_in_flight(
    jobs, kube, namespace, emulator: ChaosEmulator, start_operator, audit: Audit, record: Record
) -> None:
    """30% 5xx, 10% 429 with Retry-After, 5% hangs, 10% late creates, 5% 200 error bodies."""
    rng, began, ops = seeded(), time.monotonic(), []
    count, storm = scaled(20, 200), scaled(30, 180)
    emulator.fault(operation="*", action="throttle", rate=0.1, retryAfter=1)
    emulator.fault(operation="create", action="late", seconds=4, rate=0.1, times=MANY)
    emulator.fault(operation="*", action="hang", rate=0.05, times=MANY)
    emulator.fault(
        operation="list", action="respond", status=200, body=ERROR_BODY, rate=0.05, times=MANY
    )
    emulator.fault(operation="*", action="respond", status=503, rate=0.3, times=MANY)
    jobs.apply_many(mixed_jobs(rng, count, prefix="storm"))
    started(ops, audit, start_operator())
    time.sleep(storm)
    outcomes, hits = emulator.outcomes(), fault_hits(emulator)
    emulator.clear_faults()
    finish(
        audit, ops, record, "dli-storm", count, began, timeout=scaled(180, 900),
        notes=f"{count} jobs, {storm}s of storm; answers during it: {_summary(outcomes)}; "
        f"faults hit: {hits}",
    )  # fmt: skip
    assert all(hits.values()), f"a fault of the storm never hit: {hits}"


def test_hostile_replies_with_many_jobs_in_flight(
    jobs, kube, namespace, emulator: ChaosEmulator, start_operator, audit: Audit, record: Record
) -> None:
    """Replies that say less than they must (issue 10, items 4, 12, 13): sessions with null
    state and log, lists without ``total``, details without a state, creates whose reply lost
    its id (the job IS created), and create replies dripping past the request deadline."""
    rng, began, ops = seeded(), time.monotonic(), []
    count, storm = scaled(10, 100), scaled(30, 120)
    hostile = [
        {"operation": "list", "action": "mangle", "set": {"state": None, "log": None}, "rate": 0.2},
        {"operation": "list", "action": "mangle", "remove": ["total"], "rate": 0.1},
        {"operation": "list", "action": "respond", "status": 200, "body": ERROR_BODY, "rate": 0.05},
        {"operation": "show", "action": "mangle", "set": {"state": None}, "rate": 0.2},
        {"operation": "create", "action": "mangle", "remove": ["id"], "rate": 0.2},
        {"operation": "create", "action": "drip", "seconds": 1, "chunkBytes": 4, "rate": 0.1},
    ]
    for rule in hostile:
        emulator.fault(**rule, times=MANY)
    jobs.apply_many(mixed_jobs(rng, count, prefix="hostile"))
    env = {"DLI_OPERATOR_DLI__REQUEST_DEADLINE_SECONDS": "10"}
    started(ops, audit, start_operator(env=env))
    time.sleep(storm)
    hits = fault_hits(emulator)
    emulator.clear_faults()
    finish(
        audit, ops, record, "hostile-replies", count, began, timeout=scaled(180, 600),
        notes=f"{count} jobs, {storm}s of mangled, error-bodied and dripping replies "
        f"(request deadline 10s); faults hit: {hits}",
    )  # fmt: skip
    assert all(hits.values()), f"a hostile reply was never sent: {hits}"


def test_wrong_keys_are_a_condition_without_a_tight_loop_and_a_rotated_secret_heals(
    jobs, kube, namespace, emulator: ChaosEmulator, start_operator, audit: Audit, record: Record
) -> None:
    began, ops = time.monotonic(), []
    wrong_ak, wrong_sk, blocked = "WRONGAK1234567890", "wrong-sk-chaos-5e1d3a", 10
    audit.secrets |= {wrong_ak, wrong_sk}
    put_secret(kube, namespace, wrong_ak, wrong_sk)
    count, window = scaled(3, 10), scaled(20, 120)
    env = {"DLI_OPERATOR_RECONCILE__BLOCKED_RETRY_SECONDS": str(blocked)}
    started(ops, audit, start_operator(env=env))
    ref = {"credentialsSecretRef": {"name": "chaos-creds"}}
    jobs.apply_many({f"auth-{i}": {**ref, "conf": {RUN_SECONDS: "2"}} for i in range(count)})
    _wait(lambda: _denied(emulator) > 0, 60, "a signed call denied")
    first = _denied(emulator)
    time.sleep(window)
    denied = _denied(emulator) - first
    reasons = {_submitted_reason(jobs.status(n)) for n in jobs.phases()}
    put_secret(kube, namespace, ACCESS_KEY, SECRET_KEY)
    audit.progress.excuse(blocked + STARTUP_SECONDS)  # blocked jobs look again this late
    per_job_minute = denied / count / (window / 60)
    finish(
        audit, ops, record, "auth-faults", count, began, timeout=scaled(120, 300),
        notes=f"wrong AK/SK for {window}s: {denied} denied calls, {per_job_minute:.1f} per job "
        f"per minute (blocked retry {blocked}s); conditions {sorted(map(str, reasons))}; "
        "then the Secret was rotated to the right keys",
    )  # fmt: skip
    assert reasons == {"AuthenticationFailed"}, reasons
    # One try per job per blocked-retry period, with slack for a loaded machine's timers.
    assert per_job_minute <= 1.5 * 60 / blocked, "wrong keys are retried in a tight loop"


# --- helpers -------------------------------------------------------------------------------


def ring_changes(ops: list[Any]) -> int:
    """How many times the replicas logged a new ring (shards/membership.py), all summed."""
    return sum(
        op.log.read_text(errors="replace").count("shard ring ") for op in ops if op.log.exists()
    )


def adopted(audit: Audit) -> int:
    """Jobs whose batch was found in DLI and adopted, not posted: a create left in flight."""
    return sum(_submitted_reason(i.get("status") or {}) == "Adopted" for i in audit.items())


def put_secret(kube, namespace: str, access_key: str, secret_key: str) -> None:
    secret = {
        "apiVersion": "v1", "kind": "Secret", "type": "dli.dev/credentials",
        "metadata": {"name": "chaos-creds", "namespace": namespace},
        "stringData": {"accessKey": access_key, "secretKey": secret_key},
    }  # fmt: skip
    kube.kubectl("apply", "-f", "-", input=json.dumps(secret))


def restart_control_plane_process(kube, component: str) -> None:
    """SIGKILL one process of the suite's control plane; start it again, same command line."""
    pidfile = kube.kubeconfig.parent / "pids.json"
    pids = json.loads(pidfile.read_text())
    pid = pids[component]
    argv = Path(f"/proc/{pid}/cmdline").read_bytes().rstrip(b"\0").split(b"\0")
    os.kill(pid, signal.SIGKILL)
    child = controlplane._CHILDREN.pop(pid, None)
    if child is not None:
        child.wait()
    log = (kube.kubeconfig.parent / f"{component}.log").open("ab")
    proc = subprocess.Popen(
        [a.decode() for a in argv], stdout=log, stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL, start_new_session=True,
        preexec_fn=controlplane.die_with_parent,
    )  # fmt: skip
    log.close()
    controlplane._CHILDREN[proc.pid] = proc
    pidfile.write_text(json.dumps({**pids, component: proc.pid}))
    _wait(
        lambda: kube.kubectl("get", "--raw", "/readyz", check=False).returncode == 0, 120, "ready"
    )


def dli_requests(port: int) -> float:
    """DLI calls the operator made so far (every attempt), from its /metrics."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
        text = response.read().decode()
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith("dli_operator_api_requests_total{")
    )


def _submitted_reason(status: dict[str, Any]) -> str | None:
    conditions = status.get("conditions") or []
    return next((c["reason"] for c in conditions if c["type"] == "Submitted"), None)


def _denied(emulator: ChaosEmulator) -> int:
    return sum(counts.get("401", 0) for counts in emulator.outcomes().values())


def fault_hits(emulator: ChaosEmulator) -> dict[str, int]:
    """How many calls each rate-spread rule answered so far (rules start at ``MANY``)."""
    hits: dict[str, int] = {}
    for rule in emulator._call("GET", "/_emulator/faults")["faults"]:
        if rule.get("times") is None:  # a throttle without a bound: no count kept
            continue
        what = rule["action"] + " " + rule["operation"]
        what += "".join(f" {k}" for k in (rule.get("remove") or [])) + "".join(
            f" {k}=null" for k in (rule.get("set") or {})
        )
        hits[what] = hits.get(what, 0) + MANY - int(rule["times"])
    return hits


def _summary(outcomes: dict[str, dict[str, int]]) -> str:
    total: dict[str, int] = {}
    for counts in outcomes.values():
        for code, n in counts.items():
            total[code] = total.get(code, 0) + n
    return ", ".join(f"{code}: {n}" for code, n in sorted(total.items()))


def _wait(check: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"{what}: not within {timeout}s"
        time.sleep(0.5)


def _wait_gone(jobs: Any, names: list[str], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while any(jobs.exists(n) for n in names) and time.monotonic() < deadline:
        time.sleep(1.0)
