"""Handovers between replicas with a backlog in the rate limiter: no job is stranded (issue 18).

On the kopf-peering engine a paused replica's daemons take up to their stop grace (40 s) to
end, because a step may be waiting for a DLI request slot; kopf respawns a daemon only on a
watch event strictly after the old one ended, so a resume inside that grace left jobs with no
daemon and no event: never submitted while the active replica sat idle. Here a low DLI rate
keeps a queue of about 40 s in the limiter while a second replica joins and leaves twice
(SIGKILL, then SIGTERM), each resume landing well inside the grace.

Only behaviour is asserted, so the test holds for any engine: every job is submitted exactly
once per attempt and finishes, and no job goes without progress for longer than two poll
intervals plus what its queue position explains (``tests/e2e/progress.py``). How replicas
start and hand over lives in one place, ``Replicas`` in tests/e2e/conftest.py.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from typing import Any

from tests.e2e.conftest import Replicas
from tests.e2e.progress import Progress, Timings, report

RUN_SECONDS = "spark.dli.emulator.runSeconds"
FINAL = {"Succeeded", "Failed", "Cancelled"}
COUNT, RATE, POLL = 60, 2.0, 2.0
# Requests left for submissions: one list refresh per poll interval goes first (ratelimit.py's
# urgent reads), and two replicas may split the budget between them.
SUBMIT_RATE = (RATE - 1 / POLL) / 2
ENV = {
    "DLI_OPERATOR_DLI__REQUESTS_PER_SECOND": str(RATE),
    "DLI_OPERATOR_DLI__BURST": "1",
    "DLI_OPERATOR_RECONCILE__POLL_INTERVAL_SECONDS": str(POLL),
}
# Long enough for the whole queue at the submit rate, plus a stranded job's patience twice.
TIMINGS = Timings(poll_seconds=POLL, dli_rate=SUBMIT_RATE, floor_seconds=10.0)
AFTER_LAST_HANDOVER = COUNT / SUBMIT_RATE + 2 * TIMINGS.patience


def wait_for(what: str, check: Any, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"{what}: not within {timeout}s"
        time.sleep(0.5)


def test_no_job_is_stranded_when_replicas_hand_over_with_a_backlog_in_the_rate_limiter(
    jobs, kube, namespace, emulator, start_operator, audit
):
    def items() -> list[dict[str, Any]]:
        out = kube.kubectl("get", "dlibatchjobs", "-n", namespace, "-o", "json")
        return list(json.loads(out.stdout)["items"])

    replicas = Replicas(kube, namespace, start_operator, ENV)
    progress = Progress(items, emulator.jobs, TIMINGS).start()
    replicas.replica("first")
    jobs.apply_many({f"queued-{i:02d}": {"conf": {RUN_SECONDS: "1"}} for i in range(COUNT)})
    wait_for("the first submissions", lambda: len(emulator.jobs()) >= 3, timeout=60)

    began = time.monotonic()
    for kill in (True, False):  # a higher-priority replica joins and leaves, twice
        joiner = replicas.join()
        progress.excuse(replicas.gap_seconds)
        time.sleep(3)
        replicas.leave(joiner, kill=kill)
        progress.excuse(replicas.gap_seconds)
        time.sleep(2)
    handovers = time.monotonic() - began
    unsubmitted = COUNT - len(emulator.jobs())
    assert unsubmitted > COUNT // 3, "the backlog drained during the handovers: nothing tested"

    # Judged after the last handover only: what a job went through between handovers is the
    # chaos suite's pause-resume scenario; here it must not be left behind once they are over.
    progress.forget()
    last = time.monotonic()
    deadline = last + AFTER_LAST_HANDOVER
    while time.monotonic() < deadline and not set(jobs.phases().values()) <= FINAL:
        time.sleep(1.0)
    finished = time.monotonic() - last
    stranded = progress.stop()

    phases = jobs.phases()
    at_end = dict(Counter(phases.values()))
    assert not stranded, (
        f"{len(stranded)} of {COUNT} jobs stranded; phases at the end {at_end}:\n"
        + ("\n".join(report(stranded)))
    )
    assert set(phases.values()) == {"Succeeded"}, {
        n: p for n, p in phases.items() if p not in FINAL
    }
    statuses = audit.one_batch_per_attempt()
    assert {len(s["attempts"]) for s in statuses.values()} == {1}
    print(
        f"handovers took {handovers:.0f}s with {unsubmitted} jobs unsubmitted at the end; "
        f"all final {finished:.0f}s after the last one"
    )
