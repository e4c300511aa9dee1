"""Every Prometheus metric of the operator, and nothing else calls prometheus_client.

Labels are bounded: operation names, outcomes, phases, kinds. Never a job name, namespace or
batch id (a label per job would grow without end with 10,000 jobs).
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram, start_http_server

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

_phases: dict[str, str] = {}


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


def start_metrics_server(port: int) -> None:
    """Serve ``/metrics`` on ``port``; 0 means off."""
    if port:
        start_http_server(port)
