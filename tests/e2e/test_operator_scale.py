"""Polling cost at scale: running jobs are watched through list calls, not one GET each.

The e2e operators poll every second (``FAST`` in conftest), so the DLI calls counted by the
emulator over a window, divided by jobs and elapsed seconds, are the calls per job per poll
interval. Per-job GETs would give about 1; one paged list per interval gives 2/200.
"""

from __future__ import annotations

import json
import time

from kubernetes import client

JOBS = 200
WINDOW_SECONDS = 12.0
POLL_INTERVAL_SECONDS = 1.0  # DLI_OPERATOR_RECONCILE__POLL_INTERVAL_SECONDS in FAST
MAX_CALLS_PER_JOB_PER_INTERVAL = 0.1


def running(kube, namespace: str) -> int:
    out = kube.kubectl("get", "dlibatchjobs", "-n", namespace, "-o", "json")
    items = json.loads(out.stdout)["items"]
    return sum((o.get("status") or {}).get("phase") == "Running" for o in items)


def test_two_hundred_running_jobs_cost_at_most_a_tenth_of_a_dli_call_per_job_per_interval(
    kube, namespace, emulator, operator
):
    api = client.CustomObjectsApi(kube.api)
    started = time.monotonic()
    for i in range(JOBS):
        body = {
            "apiVersion": "dli.dev/v1alpha1",
            "kind": "DliBatchJob",
            "metadata": {"name": f"many-{i:03d}"},
            "spec": {
                "queue": "default",
                "file": "obs://bucket/app.py",
                "conf": {"spark.dli.emulator.runSeconds": "600"},
            },
        }
        api.create_namespaced_custom_object("dli.dev", "v1alpha1", namespace, "dlibatchjobs", body)
    created = time.monotonic() - started
    deadline = time.monotonic() + 120
    while (count := running(kube, namespace)) < JOBS:
        assert time.monotonic() < deadline, f"only {count} of {JOBS} jobs reached Running"
        time.sleep(1)
    all_running = time.monotonic() - started
    assert emulator.calls()["create"] == JOBS

    before, t0 = emulator.calls(), time.monotonic()
    time.sleep(WINDOW_SECONDS)
    after, t1 = emulator.calls(), time.monotonic()
    delta = {op: after.get(op, 0) - before.get(op, 0) for op in after}
    intervals = (t1 - t0) / POLL_INTERVAL_SECONDS
    per_job = sum(delta.values()) / (JOBS * intervals)
    print(
        f"{JOBS} jobs created in {created:.1f}s, all Running after {all_running:.1f}s; "
        f"{per_job:.4f} DLI calls per job per poll interval over {t1 - t0:.1f}s: {delta}"
    )
    # The jobs are watched at all: about one refresh of the shared list per interval.
    assert delta.get("list", 0) >= intervals / 2, delta
    assert per_job <= MAX_CALLS_PER_JOB_PER_INTERVAL
    assert running(kube, namespace) == JOBS
