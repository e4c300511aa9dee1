"""Job metrics from status transitions, and the limiter gauges, read back from the registry."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from prometheus_client import REGISTRY

from dli_operator import metrics, reconcile
from dli_operator.dli.models import BatchJob
from dli_operator.ratelimit import RateLimiter
from dli_operator.resources.batchjob import DliBatchJob
from dli_operator.resources.status import DliBatchJobStatus, DliTarget

TARGET = DliTarget(endpoint="https://dli.cn-north-4.myhuaweicloud.com", project_id="p" * 32)


def intend(now: datetime) -> DliBatchJobStatus:
    """The first attempt's intent, claimed at once."""
    return reconcile.intended(
        DliBatchJobStatus(), 1, "etl-1", now, target=TARGET, claim="c0ffee", sending=True
    )


CREATED = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
BATCH = "0a324461-d9d9-45da-a52a-3b3c7a3d809e"
DLI_START_MS = int((CREATED + timedelta(seconds=5)).timestamp() * 1000)


def value(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def job(status: DliBatchJobStatus, namespace: str = "team") -> DliBatchJob:
    return DliBatchJob.model_validate(
        {
            "metadata": {"name": "etl", "namespace": namespace, "creationTimestamp": CREATED},
            "spec": {"file": "obs://b/app.py", "queue": "q1"},
            "status": status.model_dump(),
        }
    )


def remote(state: str, ran_seconds: float = 0.0) -> BatchJob:
    return BatchJob.model_validate(
        {
            "id": BATCH,
            "state": state,
            "create_time": DLI_START_MS,
            "update_time": DLI_START_MS + int(ran_seconds * 1000),
        }
    )


def store(
    status: DliBatchJobStatus, new: DliBatchJobStatus, at: datetime, ns: str = "team"
) -> None:
    metrics.record_transition(job(status, ns), new, at)


@pytest.fixture
def namespace_label() -> Iterator[None]:
    metrics.start_metrics_server(0, namespace_label=True)
    yield
    metrics.start_metrics_server(0, namespace_label=False)


def lifecycle(final_state: str, ran_seconds: float, *, auto_recovery: bool = False) -> None:
    """A job through intent, acceptance (12 s after creation) and one final observation."""
    at = CREATED + timedelta(seconds=12)
    intent = intend(CREATED)
    accepted = reconcile.accepted(intent, remote("starting"), adopted=False, now=at)
    done = reconcile.observed(
        accepted,
        remote(final_state, ran_seconds),
        now=at,
        auto_recovery=auto_recovery,
        max_retries=3,
    )
    store(DliBatchJobStatus(), intent, CREATED)
    store(intent, accepted, at)
    store(accepted, done, at)
    store(done, done, at)  # the same status again is no new event


def test_a_succeeded_job_is_counted_once_with_its_run_time_and_submission_latency() -> None:
    finished = value("dli_operator_jobs_finished_total", namespace="", phase="Succeeded")
    runs = value("dli_operator_job_run_duration_seconds_count", namespace="", phase="Succeeded")
    run_sum = value("dli_operator_job_run_duration_seconds_sum", namespace="", phase="Succeeded")
    latency = value("dli_operator_submission_latency_seconds_sum", namespace="")
    lifecycle("success", 95.5)
    assert value("dli_operator_jobs_finished_total", namespace="", phase="Succeeded") == (
        finished + 1
    )
    labels = {"namespace": "", "phase": "Succeeded"}
    assert value("dli_operator_job_run_duration_seconds_count", **labels) == runs + 1
    assert value("dli_operator_job_run_duration_seconds_sum", **labels) == run_sum + 95.5
    assert value("dli_operator_submission_latency_seconds_sum", namespace="") == latency + 12


def test_a_dead_attempt_under_auto_recovery_is_a_retry_not_a_finished_job() -> None:
    retries = value("dli_operator_job_retries_total", namespace="")
    failed = value("dli_operator_jobs_finished_total", namespace="", phase="Failed")
    lifecycle("dead", 30, auto_recovery=True)
    assert value("dli_operator_job_retries_total", namespace="") == retries + 1
    assert value("dli_operator_jobs_finished_total", namespace="", phase="Failed") == failed


def test_a_dead_job_without_auto_recovery_is_failed() -> None:
    failed = value("dli_operator_jobs_finished_total", namespace="", phase="Failed")
    lifecycle("dead", 30)
    assert value("dli_operator_jobs_finished_total", namespace="", phase="Failed") == failed + 1


def test_status_lag_is_the_time_from_dlis_update_to_the_stored_state() -> None:
    count = value("dli_operator_status_lag_seconds_count")
    total = value("dli_operator_status_lag_seconds_sum")
    accepted = reconcile.accepted(
        intend(CREATED),
        remote("starting"),
        adopted=False,
        now=CREATED,
    )
    running = reconcile.observed(
        accepted, remote("running", 20), now=CREATED, auto_recovery=False, max_retries=0
    )
    # DLI changed the state at +25 s (create +5, update +20); the status shows it at +32.5 s.
    store(accepted, running, CREATED + timedelta(seconds=32.5))
    store(running, running, CREATED + timedelta(seconds=60))  # no new state, no new lag
    assert value("dli_operator_status_lag_seconds_count") == count + 1
    assert value("dli_operator_status_lag_seconds_sum") == total + 7.5


@pytest.mark.usefixtures("namespace_label")
def test_the_namespace_label_is_filled_only_when_turned_on() -> None:
    lifecycle("success", 1)
    assert value("dli_operator_jobs_finished_total", namespace="team", phase="Succeeded") >= 1


def test_limiter_gauges_read_the_live_limiters() -> None:
    clock = [100.0]
    slow, fast = RateLimiter(2.0, 1, clock=lambda: clock[0]), RateLimiter(10.0, 1)
    metrics.watch_limiters(lambda: [slow, fast])
    slow.throttled()
    for _ in range(3):
        slow.reserve()
    assert value("dli_operator_rate_limit_requests_per_second") == 11.0
    assert value("dli_operator_rate_limit_max_requests_per_second") == 12.0
    assert value("dli_operator_rate_limit_backlog_seconds") == pytest.approx(3.0)
    metrics.watch_limiters(list)
    assert value("dli_operator_rate_limit_backlog_seconds") == 0.0


def test_build_info_names_the_version() -> None:
    from dli_operator import __version__

    samples = REGISTRY.get_sample_value(
        "dli_operator_build_info",
        {"version": __version__, "python_version": __import__("platform").python_version()},
    )
    assert samples == 1.0
