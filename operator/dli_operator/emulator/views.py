"""What each endpoint returns for a job, built with the client's own wire models.

Rendering through ``dli.models`` (``BatchJob``, ``BatchList``, ``BatchLog``...) means the
emulator and the client cannot disagree on a field name. Each call's field set follows its doc
page: create (dli_02_0124), details with ``req_body`` (dli_02_0126), list entries with
``req_body`` and ``duration`` (dli_02_0125), state (dli_02_0127), log (dli_02_0128).
The driver log is Livy-style text derived from the timeline, so it costs nothing to store; a job
of the ``spark`` back end shows its real application id and driver output instead.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from dli_operator.dli.models import BatchJob, BatchList, BatchLog, BatchState, BatchStateResponse
from dli_operator.emulator import timeline
from dli_operator.emulator.sparkstore import SparkJob
from dli_operator.emulator.state import Job

LOG_TAIL = 10  # "Last 10 records of the current batch processing job" (dli_02_0124)
DEFAULT_LOG_LINES = 100  # the log call returns the last 100 lines by default (dli_02_0128)


def _wire(model: BatchJob | BatchList | BatchLog | BatchStateResponse) -> dict[str, Any]:
    return model.model_dump(mode="json", by_alias=True, exclude_none=True)


def _job(job: Job, now_ms: int, owner: str) -> BatchJob:
    begin, state, attempt = job.at(now_ms)
    ran = any(s == timeline.RUNNING and b <= now_ms for b, s, _ in job.segments)
    current_app = attempt if state != timeline.RECOVERING else attempt - 1
    return BatchJob(
        id=job.id,
        state=BatchState(state),
        appId=_app_id(job, current_app) if ran else "",
        name=job.name,
        owner=owner,
        proxyUser="",
        kind="",
        log=driver_log(job, current_app, now_ms)[-LOG_TAIL:],
        sc_type=job.sc_type,
        cluster_name=job.queue,
        queue=job.queue,
        create_time=job.create_ms,
        update_time=begin,
        duration=timeline.running_ms(job.segments, now_ms),
        image=job.req_body.get("image"),
    )


def created(job: Job, now_ms: int, owner: str) -> dict[str, Any]:
    """The create reply: ``starting``, ``appId: ""``, ``log: []`` (dli_02_0124 example)."""
    return _wire(_job(job, now_ms, owner))


def details(job: Job, now_ms: int, owner: str) -> dict[str, Any]:
    """The details reply, with ``req_body`` as a JSON string (dli_02_0126)."""
    model = _job(job, now_ms, owner)
    model.req_body = job.req_body_json
    model.feature = job.req_body.get("feature")
    model.spark_version = job.req_body.get("spark_version")
    model.duration = None  # not part of the details reply (dli_02_0126)
    return _wire(model)


def session(job: Job, now_ms: int, owner: str) -> dict[str, Any]:
    """One entry of the list reply (dli_02_0125)."""
    model = _job(job, now_ms, owner)
    model.req_body = job.req_body_json
    return _wire(model)


def listed(offset: int, total: int, sessions: list[dict[str, Any]], now_ms: int) -> dict[str, Any]:
    """The list reply; ``sessions`` are already rendered, so they are not validated twice."""
    return {"from": offset, "total": total, "sessions": sessions, "create_time": now_ms}


def state(job: Job, now_ms: int) -> dict[str, Any]:
    """``{"id", "state"}`` (dli_02_0127)."""
    return _wire(BatchStateResponse(id=job.id, state=BatchState(job.state(now_ms))))


def log(
    job: Job, now_ms: int, *, attempt: int, offset: int | None, size: int | None
) -> dict[str, Any]:
    """A window of one attempt's driver log: the last 100 lines unless ``from`` says otherwise."""
    lines = driver_log(job, attempt, now_ms)
    size = DEFAULT_LOG_LINES if size is None else size
    start = max(len(lines) - size, 0) if offset is None else offset
    window = lines[start : start + size]
    return _wire(BatchLog(id=job.id, **{"from": start}, total=len(lines), log=window))


def _app_id(job: Job, attempt: int) -> str:
    if isinstance(job, SparkJob):
        return job.app_id
    return timeline.app_id(job.id, attempt)


def driver_log(job: Job, attempt: int, now_ms: int) -> list[str]:
    """The driver log of one attempt up to ``now_ms``: empty until that attempt runs."""
    if isinstance(job, SparkJob):
        return job.driver_log() if attempt == 0 else []
    lines: list[str] = []
    for index, (begin, state, segment_attempt) in enumerate(job.segments):
        if begin > now_ms:
            break
        if segment_attempt == attempt and state == timeline.RUNNING:
            lines += _started(job, attempt, begin)
        elif lines and state in (timeline.RECOVERING, *timeline.TERMINAL):
            lines += _ended(job, state, begin, last=index == len(job.segments) - 1)
            break
    return lines


def _stamp(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=UTC).strftime("%y/%m/%d %H:%M:%S")


def _started(job: Job, attempt: int, at_ms: int) -> list[str]:
    at = _stamp(at_ms)
    version = job.req_body.get("spark_version", "3.3.1")
    return [
        f"{at} INFO SparkContext: Running Spark version {version}",
        f"{at} INFO SparkContext: Submitted application: {job.name or job.req_body['file']}",
        f"{at} INFO DliEmulator: batch {job.id} attempt {attempt} is running",
        f"{at} INFO YarnClientSchedulerBackend: Application {timeline.app_id(job.id, attempt)}"
        " has started running.",
    ]


def _ended(job: Job, state: str, at_ms: int, *, last: bool) -> list[str]:
    at = _stamp(at_ms)
    if state == timeline.SUCCESS:
        return [
            f"{at} INFO SparkContext: Successfully stopped SparkContext",
            "stdout: ",
            "stderr: ",
        ]
    reason = "emulated failure"
    if last and job.stop_reason:
        reason = f"{job.stop_reason} through the emulator"
    return [
        f"{at} ERROR ApplicationMaster: User class threw exception: {reason}",
        f"{at} INFO ApplicationMaster: Final app status: FAILED, exitCode: 15",
        "stdout: ",
        "stderr: ",
        f"YARN Diagnostics: {reason}",
    ]
