"""Every Prometheus metric of the operator, and nothing else calls prometheus_client.

Labels are bounded: operation names, outcomes, phases, kinds. Never a job name or batch id (a
label per job would grow without end with 10,000 jobs). The job metrics may carry the job's
``namespace`` when ``DLI_OPERATOR_METRICS__NAMESPACE_LABEL=true`` (spark-operator #264, #2817:
users ask for it); off by default, the label is empty, which Prometheus stores as no label.
docs/observability.md lists every metric, and the alerts and dashboard built on them.
"""

from __future__ import annotations

import platform
from collections.abc import Callable, Iterable
from datetime import datetime

from prometheus_client import Counter, Gauge, Histogram, Info, start_http_server

from dli_operator import __version__
from dli_operator.dli.errors import DliError
from dli_operator.ratelimit import RateLimiter
from dli_operator.resources.batchjob import DliBatchJob
from dli_operator.resources.status import FINAL_PHASES, DliBatchJobStatus, Phase

# The DLI calls the operator itself makes (driver/, runtime.py), as the client names them; the
# kubectl plugin's log reads are its own process and are not counted here.
DLI_OPERATIONS = ("create_batch", "get_batch", "list_batches", "cancel_batch")
# What reconcile errors are counted as (driver/core.py).
RECONCILE_ERROR_KINDS = ("temporary", "permanent")


def api_outcomes() -> list[str]:
    """Every outcome the client reports: ``success`` or an error class's ``outcome``."""
    found, todo = {"success"}, [DliError]
    while todo:
        cls = todo.pop()
        found.add(cls.outcome)
        todo.extend(cls.__subclasses__())
    return sorted(found)


API_REQUESTS = Counter(
    "dli_operator_api_requests_total",
    "DLI API calls by operation and outcome.",
    ["operation", "outcome"],
)
API_LATENCY = Histogram(
    "dli_operator_api_request_duration_seconds",
    "DLI API call latency by operation.",
    ["operation"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
SUBMISSIONS = Counter(
    "dli_operator_submissions_total",
    "Attempts handed to DLI: posted anew, or adopted after a restart.",
    ["how"],
)
RECONCILE_ERRORS = Counter(
    "dli_operator_reconcile_errors_total",
    "Reconcile steps that failed, by kind (temporary or permanent).",
    ["kind"],
)
JOBS = Gauge("dli_operator_batchjobs", "DliBatchJobs seen by this operator, by phase.", ["phase"])
RATE_LIMIT_WAITING = Gauge(
    "dli_operator_rate_limit_waiting", "Requests waiting for a DLI request slot."
)
RATE_LIMIT_RATE = Gauge(
    "dli_operator_rate_limit_requests_per_second",
    "The DLI limiters' current rate, summed over DLI targets (lowered by throttling).",
)
RATE_LIMIT_MAX_RATE = Gauge(
    "dli_operator_rate_limit_max_requests_per_second",
    "The DLI limiters' configured rate, summed over DLI targets.",
)
RATE_LIMIT_BACKLOG = Gauge(
    "dli_operator_rate_limit_backlog_seconds",
    "How long a submission asking now would wait for its slot (the longest over DLI targets).",
)
# Job outcomes: one series per final phase (times the namespace, when that label is on).
JOBS_FINISHED = Counter(
    "dli_operator_jobs_finished_total",
    "DliBatchJobs that reached a final phase (Succeeded, Failed, Cancelled).",
    ["namespace", "phase"],
)
JOB_RUN_DURATION = Histogram(
    "dli_operator_job_run_duration_seconds",
    "Run time of a finished job's last attempt, from DLI's create_time to its update_time.",
    ["namespace", "phase"],
    buckets=(10, 30, 60, 120, 300, 600, 1200, 1800, 3600, 7200, 14400, 43200, 86400),
)
SUBMISSION_LATENCY = Histogram(
    "dli_operator_submission_latency_seconds",
    "Time from a DliBatchJob's creation to DLI's batch id for its first attempt.",
    ["namespace"],
    buckets=(0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1200, 3600),
)
STATUS_LAG = Histogram(
    "dli_operator_status_lag_seconds",
    "Time from DLI's update_time for a new DLI state to the status showing that state.",
    buckets=(0.5, 1, 2.5, 5, 10, 15, 30, 60, 120, 300, 600, 1200),
)
RETRIES = Counter(
    "dli_operator_job_retries_total",
    "Resubmissions of dead attempts (autoRecovery).",
    ["namespace"],
)
ENGINE_QUEUE = Gauge(
    "dli_operator_engine_queue_keys", "Keys with a timer in the engine's work queue."
)
ENGINE_IN_FLIGHT = Gauge(
    "dli_operator_engine_steps_in_flight", "Keys being stepped by the engine's workers now."
)
ENGINE_PARKED = Gauge(
    "dli_operator_engine_parked_keys",
    "Keys waiting for a slot in the engine's submit lane (new attempts beyond half the workers).",
)
BUILD_INFO = Info("dli_operator_build", "The operator's version and Python version.")
BUILD_INFO.info({"version": __version__, "python_version": platform.python_version()})

# Series that exist from the start, at zero, so rates and ratios over them are defined at once,
# and a counter's first event is an increase from 0 that increase() sees, not a new series at 1
# it cannot tell from one not scraped before (issue 19). tests/unit/test_metrics.py checks that
# a fresh process exposes every series the alerts select.
for _how in ("posted", "adopted"):
    SUBMISSIONS.labels(_how)
for _final in sorted(FINAL_PHASES):
    JOBS_FINISHED.labels("", _final.value)
    JOB_RUN_DURATION.labels("", _final.value)
RETRIES.labels("")
SUBMISSION_LATENCY.labels("")
for _operation in DLI_OPERATIONS:
    API_LATENCY.labels(_operation)
    for _outcome in api_outcomes():
        API_REQUESTS.labels(_operation, _outcome)
for _kind in RECONCILE_ERROR_KINDS:
    RECONCILE_ERRORS.labels(_kind)
for _phase in Phase:
    JOBS.labels(_phase.value)

_phases: dict[str, str] = {}
_namespace_label = False


def record_api_call(operation: str, outcome: str, seconds: float) -> None:
    """The DLI client's observer: one call, its outcome and latency."""
    API_REQUESTS.labels(operation, outcome).inc()
    API_LATENCY.labels(operation).observe(seconds)


def record_phase(uid: str, phase: str | None) -> None:
    """Track one job's phase (None when it is gone) so the by-phase gauge stays exact."""
    old = _phases.pop(uid, None)
    if old is not None:
        JOBS.labels(old).dec()
    if phase is not None:
        _phases[uid] = phase
        JOBS.labels(phase).inc()


def record_transition(job: DliBatchJob, new: DliBatchJobStatus, now: datetime) -> None:
    """Count what storing ``new`` over ``job.status`` means: a finished job, a retry, a batch id.

    Called once per status write, so each event is counted once, by the process that caused
    it; nothing is remembered per job.
    """
    old, created = job.status, job.metadata.creation_timestamp
    ns = (job.metadata.namespace or "") if _namespace_label else ""
    if new.retries > old.retries:
        RETRIES.labels(ns).inc(new.retries - old.retries)
    if created and new.batch_id and not old.batch_id and len(new.attempts) == 1:
        SUBMISSION_LATENCY.labels(ns).observe(max(0.0, (now - created).total_seconds()))
    if new.state != old.state and new.update_time and new.batch_id == old.batch_id:
        STATUS_LAG.observe(max(0.0, (now - new.update_time).total_seconds()))
    phase = new.phase
    if phase is None or not phase.is_final or old.phase == phase:
        return
    JOBS_FINISHED.labels(ns, phase.value).inc()
    if new.batch_id and new.create_time and new.update_time:
        ran = (new.update_time - new.create_time).total_seconds()
        JOB_RUN_DURATION.labels(ns, phase.value).observe(max(0.0, ran))


def watch_limiters(limiters: Callable[[], Iterable[RateLimiter]]) -> None:
    """Read the limiters' rate, queue and backlog at every scrape (nothing to keep in step)."""
    RATE_LIMIT_WAITING.set_function(lambda: float(sum(lim.waiting for lim in limiters())))
    RATE_LIMIT_RATE.set_function(lambda: sum(lim.rate for lim in limiters()))
    RATE_LIMIT_MAX_RATE.set_function(lambda: sum(lim.max_rate for lim in limiters()))
    RATE_LIMIT_BACKLOG.set_function(
        lambda: max((lim.expected_wait() for lim in limiters()), default=0.0)
    )


def start_metrics_server(port: int, *, namespace_label: bool = False) -> None:
    """Serve ``/metrics`` on ``port`` (0 means off); ``namespace_label`` labels job metrics."""
    global _namespace_label
    _namespace_label = namespace_label
    if port:
        start_http_server(port)


# Sharding (issue 18): shards/membership.py sets the membership gauges, the engine the others.
SHARD_MEMBERS = Gauge(
    "dli_operator_shard_members",
    "Replicas in this replica's view of the shard ring (itself included while a member).",
)
SHARD_MEMBER = Gauge(
    "dli_operator_shard_member",
    "1 while this replica counts itself a shard member (its own Lease is fresh; always 1 "
    "unsharded), else 0.",
)
SHARD_OWNED_JOBS = Gauge(
    "dli_operator_shard_owned_jobs", "DliBatchJobs (live and finished) this replica's shard owns."
)
SHARD_HANDOVERS = Counter(
    "dli_operator_shard_handovers_total",
    "Jobs that moved to this replica's shard (in) or away from it (out) on a ring change.",
    ["direction"],
)
for _direction in ("in", "out"):
    SHARD_HANDOVERS.labels(_direction)
