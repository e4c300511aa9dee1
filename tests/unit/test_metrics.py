"""Job metrics from status transitions, and the limiter gauges, read back from the registry;
and the series a fresh operator exposes, against what the alerts select."""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml
from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families

from dli_operator import metrics, reconcile
from dli_operator.dli.client import DliClient
from dli_operator.dli.models import BatchJob
from dli_operator.ratelimit import RateLimiter
from dli_operator.resources.batchjob import DliBatchJob
from dli_operator.resources.status import DliBatchJobStatus, DliTarget, Phase

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


# --- every series the alerts select exists from the start (issue 19) -------------------------

REPO = Path(__file__).resolve().parents[2]
RULES = REPO / "deploy/components/monitoring/prometheusrule.yaml"
ALERTS_TEST = REPO / "tests/data/monitoring/alerts-test.yaml"
QUIET_CASE = "a fresh start where nothing happens"
# A metric name, then optionally its matchers: name{label="v", label!~"a|b"}.
SELECTOR = re.compile(r"\b(dli_operator_[a-z_]+)(?:\{([^}]*)\})?")
MATCHER = re.compile(r'\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*(=~|!~|!=|=)\s*"([^"]*)"\s*,?')

Sample = tuple[str, dict[str, str]]
Selector = tuple[str, list[tuple[str, str, str]]]


def selectors(promql: str) -> list[Selector]:
    """The series selectors of a PromQL expression (our rules use no other brace syntax)."""
    found = []
    for name, body in SELECTOR.findall(promql):
        matchers = MATCHER.findall(body)
        assert "".join(f'{k}{op}"{v}",' for k, op, v in matchers).rstrip(",") == re.sub(
            r"\s", "", body
        ).rstrip(","), f"cannot read the matchers {body!r}"
        found.append((name, matchers))
    return found


def matches(selector: Selector, sample: Sample) -> bool:
    name, matchers = selector
    if sample[0] != name:
        return False
    for label, op, wanted in matchers:
        got = sample[1].get(label, "")
        full = re.fullmatch(wanted, got) is not None
        ok = {"=": got == wanted, "!=": got != wanted, "=~": full, "!~": not full}[op]
        if not ok:
            return False
    return True


def alert_selectors() -> list[Selector]:
    spec = yaml.safe_load(RULES.read_text())["spec"]
    exprs = [rule["expr"] for group in spec["groups"] for rule in group["rules"]]
    return [selector for expr in exprs for selector in selectors(expr)]


def fresh_samples() -> list[Sample]:
    """What /metrics shows in a new operator process before anything happened."""
    code = (
        "import sys; import dli_operator.metrics; from prometheus_client import generate_latest; "
        "sys.stdout.write(generate_latest().decode())"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    ).stdout
    return [
        (sample.name, dict(sample.labels))
        for family in text_string_to_metric_families(out)
        for sample in family.samples
    ]


def test_the_rules_select_labelled_series_so_this_check_has_something_to_check() -> None:
    labelled = {name for name, matchers in alert_selectors() if matchers}
    assert {"dli_operator_api_requests_total", "dli_operator_batchjobs"} <= labelled
    assert selectors('rate(x_total[5m]) + dli_operator_a{b="c", d!~"e|f"}') == [
        ("dli_operator_a", [("b", "=", "c"), ("d", "!~", "e|f")])
    ]


def test_a_fresh_operator_exposes_every_series_the_alerts_select() -> None:
    samples = fresh_samples()
    missing = [s for s in alert_selectors() if not any(matches(s, sample) for sample in samples)]
    assert not missing, f"no series at start for {missing}: initialise them in metrics.py"


def test_a_fresh_operator_has_a_zero_series_for_every_dli_call_and_outcome() -> None:
    samples = fresh_samples()
    calls = {
        (labels["operation"], labels["outcome"])
        for name, labels in samples
        if name == "dli_operator_api_requests_total"
    }
    outcomes = metrics.api_outcomes()
    assert calls == {(op, o) for op in metrics.DLI_OPERATIONS for o in outcomes}
    assert {"success", "auth_error", "throttled", "not_found", "server_error"} <= set(outcomes)
    phases = {labels["phase"] for name, labels in samples if name == "dli_operator_batchjobs"}
    assert phases == {p.value for p in Phase}


def test_every_counted_dli_call_is_a_call_of_the_client() -> None:
    for operation in metrics.DLI_OPERATIONS:
        assert callable(getattr(DliClient, operation)), operation


def test_the_quiet_promtool_case_starts_from_what_a_fresh_operator_exposes() -> None:
    cases = yaml.safe_load(ALERTS_TEST.read_text())["tests"]
    (quiet,) = [case for case in cases if case["name"] == QUIET_CASE]
    series = []
    for entry in quiet["input_series"]:
        ((name, matchers),) = selectors(entry["series"])
        labels = {k: v for k, op, v in matchers if k != "instance"}
        series.append((name, labels))
        assert set(entry["values"].split("x")[0].split("+")) <= {"0", "1"}, entry
    fresh = fresh_samples()
    invented = [s for s in series if s not in fresh]
    assert not invented, f"not what a fresh operator exposes: {invented}"
    uncovered = [s for s in alert_selectors() if not any(matches(s, x) for x in series)]
    assert not uncovered, f"the quiet case leaves out {uncovered}"
