"""ScheduledDliBatchJob on the real control plane: one child per minute, across a SIGKILL.

Minute boundaries cost real time, so one test runs every scenario side by side in one namespace
(about two to three minutes in all), on two shard replicas (issue 18):
- ``every``: ``* * * * *``; one child per minute, named after its minute; the replica whose
  shard owns it is SIGKILLed just before a boundary, so the survivor takes the schedule over
  when the Lease expires, and the victim returns (same identity) after the boundary, taking it
  back: the minute of the kill runs once, and no minute runs twice or not at all.
- ``forbid``: a child that runs for ten minutes; under Forbid no second child starts.
- ``paused``: makes one child, then ``suspend: true``; no child after that.
The emulator's audit then proves one DLI batch per child attempt (nothing posted twice).
"""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import yaml
from tests.e2e.conftest import Replicas

from dli_operator.scheduling import child_name
from dli_operator.shards.ring import Ring

RUN_SECONDS = "spark.dli.emulator.runSeconds"
# Kill this long before a minute boundary; restart this long after it.
KILL_BEFORE, RESTART_AFTER = 5.0, 8.0


def schedule(namespace: str, name: str, **spec: Any) -> dict[str, Any]:
    job = {"queue": "default", "file": "obs://bucket/app.py", **spec.pop("job", {})}
    return {
        "apiVersion": "dli.dev/v1alpha1",
        "kind": "ScheduledDliBatchJob",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"schedule": "* * * * *", "jobTemplate": {"spec": job}, **spec},
    }


def children(kube: Any, namespace: str, name: str) -> list[str]:
    out = kube.kubectl(
        "get", "dlibatchjobs", "-n", namespace, "-l", f"dli.dev/schedule={name}", "-o", "json"
    )
    return sorted(o["metadata"]["name"] for o in json.loads(out.stdout)["items"])


def wait_children(kube: Any, namespace: str, name: str, count: int, timeout: float) -> list[str]:
    """The schedule's children once there are at least ``count`` (or at the timeout)."""
    deadline = time.monotonic() + timeout
    found = children(kube, namespace, name)
    while len(found) < count and time.monotonic() < deadline:
        time.sleep(0.5)
        found = children(kube, namespace, name)
    return found


def minute_of(name: str) -> int:
    return int(name.rsplit("-", 1)[1])


def sleep_until(moment: datetime) -> None:
    time.sleep(max(0.0, (moment - datetime.now(UTC)).total_seconds()))


def next_boundary(margin: float) -> datetime:
    """The next minute boundary at least ``margin`` seconds away."""
    now = datetime.now(UTC)
    boundary = now.replace(second=0, microsecond=0) + timedelta(minutes=1)
    return (
        boundary if (boundary - now).total_seconds() >= margin else boundary + timedelta(minutes=1)
    )


def test_schedules_run_once_per_minute_across_a_sigkill_forbid_and_suspend(
    kube: Any, namespace: str, start_operator: Any, emulator: Any, audit: Any
) -> None:
    replicas = Replicas(kube, namespace, start_operator, {})
    replicas.replica("survivor")
    # The kill must move the schedule: name it so that the victim's shard owns it.
    ring = Ring({"survivor", "victim"})
    every = next(
        n for n in (f"every-{i}" for i in range(64)) if ring.owner(f"{namespace}/{n}") == "victim"
    )
    docs = [
        schedule(namespace, every),
        schedule(
            namespace, "forbid", concurrencyPolicy="Forbid", job={"conf": {RUN_SECONDS: "600"}}
        ),
        schedule(namespace, "paused"),
    ]
    kube.kubectl("apply", "-f", "-", input=yaml.safe_dump_all(docs))
    victim = replicas.join("victim")

    # The first minute: every schedule makes one child.
    for name in (every, "forbid", "paused"):
        assert wait_children(kube, namespace, name, 1, timeout=90), f"{name} made no child"
    patch = json.dumps({"spec": {"suspend": True}})
    kube.kubectl(
        "patch", "scheduleddlibatchjob", "paused", "-n", namespace, "--type=merge", "-p", patch
    )
    suspended_at = int(datetime.now(UTC).timestamp()) // 60

    # SIGKILL just before a boundary, back after it: that minute must still run, once.
    boundary = next_boundary(margin=KILL_BEFORE + 10)
    sleep_until(boundary - timedelta(seconds=KILL_BEFORE))
    replicas.leave(victim, kill=True)  # returns once the survivor's ring has only itself
    sleep_until(boundary + timedelta(seconds=RESTART_AFTER))
    replicas.join("victim")
    missed = child_name(every, boundary)
    found = wait_children(kube, namespace, every, 2, timeout=60)
    deadline = time.monotonic() + 60
    while missed not in found and time.monotonic() < deadline:
        time.sleep(0.5)
        found = children(kube, namespace, every)
    assert missed in found, f"the minute of the kill never ran: {found}"

    # One child per minute, every minute from the first to the one of the kill, no gap.
    minutes = [minute_of(n) for n in found if minute_of(n) <= minute_of(missed)]
    assert minutes == list(range(minutes[0], minute_of(missed) + 1))
    assert len(minutes) >= 2
    # Forbid: the ten-minute child is still the only one. Suspend: no child after the patch.
    assert len(children(kube, namespace, "forbid")) == 1
    paused = children(kube, namespace, "paused")
    assert paused
    assert all(minute_of(n) <= suspended_at for n in paused), (paused, suspended_at)
    out = kube.kubectl("get", "events", "-n", namespace, "-o", "json")
    reasons = {(e["involvedObject"]["name"], e["reason"]) for e in json.loads(out.stdout)["items"]}
    assert ("forbid", "JobAlreadyActive") in reasons
    # Nothing was submitted to DLI twice, nothing was lost.
    audit.one_batch_per_attempt()
    status = json.loads(
        kube.kubectl("get", "scheduleddlibatchjob", every, "-n", namespace, "-o", "json").stdout
    )["status"]
    assert datetime.fromisoformat(status["lastScheduleTime"]) >= boundary
    assert status["nextScheduleTime"]


def test_a_git_managed_job_with_a_ttl_gets_a_warning_and_a_condition(
    kube: Any, namespace: str, operator: Any, jobs: Any
) -> None:
    doc = jobs.manifest("synced", {"ttlSecondsAfterFinished": 3600})
    doc["metadata"]["annotations"] = {
        "argocd.argoproj.io/tracking-id": f"app:dli.dev/DliBatchJob:{namespace}/synced"
    }
    kube.kubectl("apply", "-f", "-", input=yaml.safe_dump(doc))
    jobs.wait_phase("synced", "Succeeded", timeout=60)
    conditions = {c["type"]: c for c in jobs.status("synced")["conditions"]}
    risk = conditions["GitOpsTtlRisk"]
    assert (risk["status"], risk["reason"]) == ("True", "TtlUnderGitOps")
    assert "Argo CD" in risk["message"]
    assert (conditions["Ready"]["status"], conditions["Stalled"]["status"]) == ("True", "False")
    events = jobs.wait_events("synced", lambda es: any(e["reason"] == "TtlUnderGitOps" for e in es))
    warning = next(e for e in events if e["reason"] == "TtlUnderGitOps")
    assert warning["type"] == "Warning"
    assert "runs again" in warning["message"]
