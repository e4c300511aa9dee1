"""The in-memory job store: DLI's batches, indexed so 10,000 of them stay cheap to list.

A ``Job`` holds its planned timeline (see ``timeline``); its state is looked up from the clock on
every read. The store keeps the indexes the list call (dli_02_0125) filters on (queue, name, id),
plus the set of jobs not yet finished, maintained with a heap of end times, so polling for the
few running jobs never walks the finished ones. Mutations go to an optional journal so a
restarted emulator keeps its jobs.
"""

from __future__ import annotations

import heapq
import json
import uuid
from collections.abc import Sequence
from typing import Any, Self

from dli_operator.emulator import timeline
from dli_operator.emulator.clock import Clock
from dli_operator.emulator.config import EmulatorConfig
from dli_operator.emulator.journal import Journal
from dli_operator.emulator.replies import ApiError, not_found
from dli_operator.emulator.timeline import Segment
from dli_operator.emulator.validation import ValidRequest


class Job:
    """One batch: what was asked, and its timeline (cut short when cancelled or killed)."""

    __slots__ = (
        "begins",
        "create_ms",
        "id",
        "queue",
        "req_body",
        "req_body_json",
        "sc_type",
        "segments",
        "seq",
        "stop_reason",
    )

    def __init__(
        self,
        *,
        id: str,
        seq: int,
        req_body: dict[str, Any],
        queue: str,
        sc_type: str,
        segments: list[Segment],
        stop_reason: str | None = None,
    ) -> None:
        self.id, self.seq, self.req_body, self.queue = id, seq, req_body, queue
        self.sc_type, self.stop_reason = sc_type, stop_reason
        self.create_ms = segments[0][0]
        self.req_body_json = json.dumps(req_body, separators=(",", ":"), ensure_ascii=False)
        self.set_segments(segments)

    def set_segments(self, segments: list[Segment]) -> None:
        self.segments = segments
        self.begins = [segment[0] for segment in segments]

    @property
    def name(self) -> str:
        return str(self.req_body.get("name", ""))

    @property
    def ends_ms(self) -> int:
        """When the job reaches (or reached) its terminal state."""
        return self.segments[-1][0]

    def at(self, now_ms: int) -> Segment:
        return timeline.current(self.segments, self.begins, now_ms)

    def state(self, now_ms: int) -> str:
        return self.at(now_ms)[1]

    def to_record(self) -> dict[str, Any]:
        fields = ("id", "seq", "req_body", "queue", "sc_type", "segments", "stop_reason")
        return {name: getattr(self, name) for name in fields}

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> Self:
        segments = [(int(b), str(s), int(a)) for b, s, a in record.pop("segments")]
        return cls(segments=segments, **record)


class Store:
    """All jobs of the one emulated project, with the indexes the list call needs."""

    def __init__(self, config: EmulatorConfig, clock: Clock, journal: Journal | None = None):
        self.config, self.clock, self.journal = config, clock, journal
        self.clear()
        if journal is not None:
            for record in journal.replay():
                self._apply(record)

    def clear(self) -> None:
        self.jobs: dict[str, Job] = {}
        self.by_queue: dict[str, list[Job]] = {}
        self.by_name: dict[str, list[Job]] = {}
        self.live: dict[str, Job] = {}
        self.live_by_queue: dict[str, dict[str, Job]] = {}
        self.ends: list[tuple[int, int, str]] = []
        self.failures: dict[str, int] = {}

    def now_ms(self) -> int:
        return int(self.clock() * 1000)

    def create(self, valid: ValidRequest) -> Job:
        """Plan the job's whole life now: its conf script, its attempts, its timeline."""
        script = timeline.read_script(
            valid.conf,
            start_seconds=self.config.start_seconds,
            run_seconds=self.config.run_seconds,
        )
        attempts = 1 + valid.max_retry_times if valid.auto_recovery else 1
        owed = 0
        if script.key is not None:
            owed = max(script.fail_first - self.failures.get(script.key, 0), 0)
        results = timeline.outcomes(script, owed, attempts)
        segments = timeline.lay_out(self.now_ms(), script.start_ms, script.run_ms, results)
        job = Job(
            id=str(uuid.uuid4()),
            seq=len(self.jobs),
            req_body=valid.req_body,
            queue=valid.queue,
            sc_type=valid.sc_type,
            segments=segments,
        )
        record: dict[str, Any] = {"op": "create", "job": job.to_record()}
        if script.key is not None:
            used = self.failures.get(script.key, 0) + min(owed, len(results))
            record["failures"] = {script.key: used}
        self._write(record)
        return self.jobs[job.id]

    def get(self, batch_id: str) -> Job:
        job = self.jobs.get(batch_id)
        if job is None:
            raise not_found(f"The batch job {batch_id} does not exist")
        return job

    def stop(self, batch_id: str, reason: str) -> Job:
        """Cancel or kill: the job is ``dead`` from now on (dli_02_0129)."""
        job = self.get(batch_id)
        now_ms = self.now_ms()
        state = job.state(now_ms)
        if state in timeline.TERMINAL:
            # dli_02_0129: "Batch processing jobs in the Successful or Failed state cannot be
            # canceled". DLI.0007 is DLI's "operation not supported" (dli_02_0056).
            raise ApiError(
                400, "DLI.0007", f"The batch job {batch_id} is {state} and cannot be cancelled"
            )
        self._write({"op": "stop", "id": batch_id, "at": now_ms, "reason": reason})
        return job

    def reset(self) -> None:
        self.clear()
        if self.journal is not None:
            self.journal.truncate()

    def settled(self) -> dict[str, Job]:
        """The unfinished jobs as of now (also kept per queue in ``live_by_queue``): finished
        ones leave as their end time passes."""
        now_ms = self.now_ms()
        while self.ends and self.ends[0][0] <= now_ms:
            ends_ms, _, batch_id = heapq.heappop(self.ends)
            job = self.jobs[batch_id]
            if job.ends_ms == ends_ms:
                self.live.pop(batch_id, None)
                self.live_by_queue[job.queue].pop(batch_id, None)
        return self.live

    def all(self) -> Sequence[Job]:
        return list(self.jobs.values())

    def _write(self, record: dict[str, Any]) -> None:
        if self.journal is not None:
            self.journal.append(record)
        self._apply(record)

    def _apply(self, record: dict[str, Any]) -> None:
        if record["op"] == "create":
            self._add(Job.from_record(dict(record["job"])))
            self.failures.update(record.get("failures", {}))
        elif record["op"] == "stop":
            job = self.jobs[record["id"]]
            job.stop_reason = record["reason"]
            job.set_segments(timeline.cut(job.segments, int(record["at"])))
            heapq.heappush(self.ends, (job.ends_ms, job.seq, job.id))

    def _add(self, job: Job) -> None:
        self.jobs[job.id] = job
        self.by_queue.setdefault(job.queue, []).append(job)
        self.by_name.setdefault(job.name, []).append(job)
        self.live[job.id] = job
        self.live_by_queue.setdefault(job.queue, {})[job.id] = job
        heapq.heappush(self.ends, (job.ends_ms, job.seq, job.id))
