"""Pure translation between the DliBatchJob resource and the DLI wire models.

``MAPPING`` is the one table from spec fields to the create request (dli_02_0124); the request,
the README table and the tests all read it. ``phase_for`` is the one bridge from DLI's raw states
to our phases. No I/O.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from dli_operator.dli.models import BatchJobRequest, BatchState
from dli_operator.resources.batchjob import DliBatchJob, DliBatchJobSpec, Phase

JOB_NAME_MAX = 128  # dli_02_0124: "The value contains a maximum of 128 characters"
UID_CHARS = 8


@dataclass(frozen=True)
class Mapping:
    """One spec field and the DLI request key it becomes (``None``: not sent)."""

    spec: str
    dli: str | None
    note: str = ""


MAPPING: tuple[Mapping, ...] = (
    Mapping("file", "file", "Main package: DLI package name or obs:// path."),
    Mapping("className", "className", "Omitted for a .py file (PySpark)."),
    Mapping("queue", "queue"),
    Mapping("clusterName", "cluster_name", "Legacy queue name; never together with queue."),
    Mapping("args", "args"),
    Mapping("scType", "sc_type"),
    Mapping("jars", "jars"),
    Mapping("pyFiles", "pyFiles"),
    Mapping("files", "files"),
    Mapping("modules", "modules"),
    Mapping("resources", "resources", "Items `{name, type}` unchanged."),
    Mapping("groups", "groups", "Items `{name, resources}` unchanged."),
    Mapping("conf", "conf"),
    Mapping(
        "name",
        "name",
        "DLI gets the operator's job name: spec.name (else metadata.name), a piece of the uid "
        "and the attempt, so an interrupted submit can be found again (`job_name_for`).",
    ),
    Mapping("driverMemory", "driverMemory"),
    Mapping("driverCores", "driverCores"),
    Mapping("executorMemory", "executorMemory"),
    Mapping("executorCores", "executorCores"),
    Mapping("numExecutors", "numExecutors"),
    Mapping("obsBucket", "obs_bucket"),
    Mapping(
        "autoRecovery",
        None,
        "Not sent (DLI's auto_recovery): the operator resubmits a dead job itself.",
    ),
    Mapping(
        "maxRetryTimes",
        None,
        "Not sent (DLI's max_retry_times): bounds the operator's resubmissions, default 20.",
    ),
    Mapping("feature", "feature"),
    Mapping("sparkVersion", "spark_version"),
    Mapping("image", "image"),
    Mapping("catalogName", "catalog_name"),
    Mapping("executionAgencyUrn", "execution_agency_urn"),
)

# DLI states (dli_02_0124 Table 7). An undocumented state ("killed", "error") is not progress
# the operator can wait for: polled forever it would wedge the job, so it ends the attempt as
# Failed (``reconcile.observed`` names the raw word, reason UnknownState; issue 10, item 12).
PHASES: dict[BatchState, Phase] = {
    BatchState.STARTING: Phase.STARTING,
    BatchState.RUNNING: Phase.RUNNING,
    BatchState.RECOVERING: Phase.RECOVERING,
    BatchState.SUCCESS: Phase.SUCCEEDED,
    BatchState.DEAD: Phase.FAILED,
}
UNKNOWN_STATE_PHASE = Phase.FAILED


def to_request(spec: DliBatchJobSpec, *, job_name: str) -> BatchJobRequest:
    """The create-batch request for one attempt of ``spec``, named ``job_name`` in DLI."""
    values = spec.model_dump(by_alias=True, exclude_none=True, mode="json")
    body: dict[str, Any] = {m.dli: values[m.spec] for m in MAPPING if m.dli and m.spec in values}
    body["name"] = job_name
    return BatchJobRequest.model_validate(body)


def job_name_for(job: DliBatchJob, attempt: int) -> str:
    """A deterministic DLI job name, unique per object and attempt, at most 128 characters."""
    uid = (job.metadata.uid or "").replace("-", "")[:UID_CHARS]
    suffix = f"-{uid}-{attempt}" if uid else f"-{attempt}"
    prefix = job.spec.name or job.metadata.name
    return prefix[: JOB_NAME_MAX - len(suffix)] + suffix


def phase_for(state: BatchState | str) -> Phase:
    """Our phase for a raw DLI state (case-insensitive); an undocumented state ends the attempt.

    ``dead`` maps to Failed; telling a cancellation apart is the operator's job (it knows
    whether it sent the DELETE).
    """
    return PHASES.get(BatchState(state), UNKNOWN_STATE_PHASE)


def duration_text(millis: int | None) -> str | None:
    """DLI's duration (milliseconds) as kubectl shows ages: ``1h2m3s``."""
    if millis is None:
        return None
    seconds = max(millis, 0) // 1000
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    parts = [(hours, "h"), (minutes, "m"), (secs, "s")]
    text = "".join(f"{n}{unit}" for n, unit in parts if n)
    return text or "0s"


def mapping_table_markdown() -> str:
    """``MAPPING`` as the README's Markdown table."""
    rows = ["| Spec field | DLI request field | Notes |", "|---|---|---|"]
    for m in MAPPING:
        dli = f"`{m.dli}`" if m.dli else "(not sent)"
        rows.append(f"| `{m.spec}` | {dli} | {m.note} |")
    return "\n".join(rows) + "\n"
