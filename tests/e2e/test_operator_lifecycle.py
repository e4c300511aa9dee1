"""The operator end to end: real API server, the emulator over HTTP, the operator as a process."""

from __future__ import annotations

import time

EMULATOR_OUTCOME = "spark.dli.emulator.outcome"
FAIL_FIRST, FAIL_KEY = "spark.dli.emulator.failFirst", "spark.dli.emulator.key"
RUN_SECONDS = "spark.dli.emulator.runSeconds"


def condition(status, kind):
    return next(c for c in status["conditions"] if c["type"] == kind)


def test_a_job_runs_to_success_with_its_dli_fields_mirrored(jobs, emulator, operator, kube):
    jobs.apply("pi", {"className": "org.apache.spark.examples.SparkPi", "file": "obs://b/pi.jar"})
    waited = kube.kubectl(
        "wait", "dlibatchjob/pi", "-n", jobs.namespace, "--for=condition=Complete", "--timeout=60s"
    )
    assert waited.returncode == 0
    status = jobs.status("pi")
    assert status["phase"] == "Succeeded"
    assert status["state"] == "success"
    assert status["appId"].startswith("spark-")
    assert status["batchId"] == emulator.created("pi")[0]["id"]
    assert status["createTime"].endswith("Z")
    assert status["observedGeneration"] == 1
    assert condition(status, "Failed")["status"] == "False"
    assert emulator.calls()["create"] == 1
    wanted = {"Submitting", "Starting", "Succeeded"}
    events = jobs.wait_events("pi", lambda evs: wanted <= {e["reason"] for e in evs})
    assert wanted <= {e["reason"] for e in events}


def test_a_dead_job_without_auto_recovery_fails_after_one_submission(jobs, emulator, operator):
    jobs.apply("doomed", {"conf": {EMULATOR_OUTCOME: "dead"}})
    status = jobs.wait_phase("doomed", "Failed")
    assert status["reason"] == "JobFailed"
    assert condition(status, "Failed")["status"] == "True"
    assert len(emulator.created("doomed")) == 1


def test_auto_recovery_resubmits_until_success(jobs, emulator, operator):
    conf = {FAIL_FIRST: "2", FAIL_KEY: "flaky", RUN_SECONDS: "1"}
    jobs.apply("flaky", {"autoRecovery": True, "maxRetryTimes": 2, "conf": conf})
    status = jobs.wait_phase("flaky", "Succeeded", timeout=90)
    assert status["retries"] == 2
    assert [a["attempt"] for a in status["attempts"]] == [1, 2, 3]
    assert [a["state"] for a in status["attempts"]] == ["dead", "dead", "success"]
    assert len(emulator.created("flaky")) == 3
    retries = jobs.wait_events(
        "flaky", lambda evs: sum(e["reason"] == "RetryScheduled" for e in evs) >= 2
    )
    assert sum(e["reason"] == "RetryScheduled" for e in retries) == 2


def test_auto_recovery_gives_up_after_max_retry_times(jobs, emulator, operator):
    conf = {EMULATOR_OUTCOME: "dead", RUN_SECONDS: "1"}
    jobs.apply("hopeless", {"autoRecovery": True, "maxRetryTimes": 2, "conf": conf})
    status = jobs.wait_phase("hopeless", "Failed", timeout=90)
    assert status["reason"] == "RetriesExhausted"
    assert len(emulator.created("hopeless")) == 3


def test_an_unknown_queue_fails_with_dli_code_in_condition_and_event(jobs, emulator, operator):
    jobs.apply("lost", {"queue": "nosuch"})
    status = jobs.wait_phase("lost", "Failed")
    message = condition(status, "Failed")["message"]
    assert "DLI.0002" in message
    assert "nosuch" in message
    assert condition(status, "Submitted")["reason"] == "SubmitRejected"

    def rejected(events):
        return any(e["type"] == "Warning" and "DLI.0002" in e["message"] for e in events)

    assert rejected(jobs.wait_events("lost", rejected))
    assert emulator.created("lost") == []


def test_a_storm_of_errors_during_submission_still_gives_one_batch(jobs, emulator, operator):
    emulator.fault(operation="create", action="respond", status=503, times=2)
    emulator.fault(
        operation="create",
        action="respond",
        status=429,
        times=1,
        headers={"Retry-After": "1"},
        body={"error_code": "APIG.0308", "error_msg": "throttled"},
    )
    # The job is created, then the answer never comes: the operator must adopt, not repost.
    emulator.fault(operation="create", action="hang", when="after", times=1)
    jobs.apply("stormy", {})
    jobs.wait_phase("stormy", "Succeeded", timeout=90)
    assert len(emulator.created("stormy")) == 1
    assert emulator.calls()["create"] == 4


def test_deleting_a_running_job_cancels_it_exactly_once(jobs, emulator, operator):
    jobs.apply("long", {"conf": {RUN_SECONDS: "300"}})
    jobs.wait_phase("long", "Running")
    jobs.delete("long")
    assert not jobs.exists("long")
    assert emulator.calls().get("cancel") == 1
    assert emulator.created("long")[0]["state"] == "dead"


def test_orphan_policy_leaves_the_dli_job_alone(jobs, emulator, operator):
    jobs.apply("orphan", {"deletionPolicy": "Orphan", "conf": {RUN_SECONDS: "300"}})
    jobs.wait_phase("orphan", "Running")
    jobs.delete("orphan")
    assert "cancel" not in emulator.calls()
    assert emulator.created("orphan")[0]["state"] == "running"


def test_deleting_a_finished_job_makes_no_dli_call(jobs, emulator, operator):
    jobs.apply("done", {})
    jobs.wait_phase("done", "Succeeded")
    before = emulator.calls()
    jobs.delete("done")
    assert emulator.calls() == before


def test_a_restart_after_everything_finished_makes_no_dli_call(
    jobs, emulator, operator, start_operator
):
    for name in ("one", "two"):
        jobs.apply(name, {})
    for name in ("one", "two"):
        jobs.wait_phase(name, "Succeeded")
    operator.stop()
    before = emulator.calls()
    start_operator()
    time.sleep(6)
    assert emulator.calls() == before


def test_suspend_cancels_the_attempt_and_resume_submits_a_new_one(jobs, emulator, operator):
    jobs.apply("pausable", {"conf": {RUN_SECONDS: "300"}})
    jobs.wait_phase("pausable", "Running")
    jobs.patch("pausable", {"suspend": True})
    jobs.wait_phase("pausable", "Suspended")
    assert emulator.calls()["cancel"] == 1
    jobs.patch("pausable", {"suspend": False})
    status = jobs.wait_phase("pausable", "Running", "Starting")
    assert len(emulator.created("pausable")) == 2
    assert status.get("retries", 0) == 0


def test_active_deadline_cancels_and_fails(jobs, emulator, operator):
    jobs.apply("slow", {"activeDeadlineSeconds": 3, "conf": {RUN_SECONDS: "300"}})
    status = jobs.wait_phase("slow", "Failed", timeout=30)
    assert status["reason"] == "DeadlineExceeded"
    assert emulator.calls()["cancel"] == 1


def test_ttl_deletes_a_finished_job(jobs, emulator, operator):
    jobs.apply("brief", {"ttlSecondsAfterFinished": 1})
    deadline = time.monotonic() + 60
    while jobs.exists("brief") and time.monotonic() < deadline:
        time.sleep(0.5)
    assert not jobs.exists("brief")
    assert len(emulator.created("brief")) == 1


def test_a_submission_dli_is_slow_to_answer_shows_submitting(jobs, emulator, operator):
    emulator.fault(operation="create", action="delay", seconds=3, times=1)
    jobs.apply("held", {})
    status = jobs.wait_phase("held", "Submitting")
    assert status["submission"]["attempt"] == 1
    assert status["submission"]["jobName"].startswith("held-")
    jobs.wait_phase("held", "Succeeded")
    assert len(emulator.created("held")) == 1


def test_a_job_waiting_for_its_credentials_secret_is_pending(jobs, emulator, operator):
    jobs.apply("waiting", {"credentialsSecretRef": {"name": "absent"}})
    status = jobs.wait_phase("waiting", "Pending")
    submitted = condition(status, "Submitted")
    assert submitted["reason"] == "CredentialsUnavailable"
    assert "absent" in submitted["message"]
    assert emulator.calls().get("create", 0) == 0
