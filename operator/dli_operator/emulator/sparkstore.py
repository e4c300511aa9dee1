"""The ``spark`` back end (issue 13): every batch runs for real on a local Spark.

Same store, same indexes and same wire views as the scripted back end; only where a job's states
come from differs. A job's timeline grows as its process reports: ``starting`` from the create
(and while it waits for a free slot of its queue, as on a busy DLI queue), ``running`` once Spark
has an application id (the appId), ``success`` on exit 0, ``dead`` otherwise or when cancelled.
A missing file, jar or package ends the job ``dead`` before Spark starts, with the reason in its
driver log, as DLI does. ``supervise()`` runs while the app serves: it watches the processes and
starts waiting jobs when slots free up. Every change goes to the journal, so after a restart the
jobs whose process was lost are ``dead`` and the jobs still waiting get their turn.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import time
import uuid
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dli_operator.emulator import processes, submit
from dli_operator.emulator.clock import Clock
from dli_operator.emulator.config import EmulatorConfig, SparkConfig
from dli_operator.emulator.journal import Journal
from dli_operator.emulator.obs import Locations, MissingFile
from dli_operator.emulator.state import Job, Store
from dli_operator.emulator.timeline import DEAD, RUNNING, STARTING, SUCCESS, TERMINAL
from dli_operator.emulator.validation import ValidRequest

TICK_SECONDS = 0.25
STOP_GRACE_SECONDS = 5.0  # SIGTERM lets Spark run its shutdown hooks; SIGKILL after this
LOST = "the emulator stopped while the job ran"


class SparkJob(Job):
    """A batch backed by a real process: its application id and its driver log on disk."""

    __slots__ = ("_lines", "app_id", "log_path")

    def __init__(self, *, app_id: str = "", **fields: Any) -> None:
        super().__init__(**fields)
        self.app_id = app_id
        self.log_path: Path | None = None
        self._lines: tuple[int, list[str]] = (0, [])

    @property
    def live(self) -> bool:
        return self.segments[-1][1] not in TERMINAL

    def to_record(self) -> dict[str, Any]:
        return {**super().to_record(), "app_id": self.app_id}

    def driver_log(self) -> list[str]:
        """The real driver output so far (re-read only when the file has grown)."""
        if self.log_path is None or not self.log_path.exists():
            return []
        size = self.log_path.stat().st_size
        if size != self._lines[0]:
            text = self.log_path.read_text(encoding="utf-8", errors="replace")
            self._lines = (size, text.splitlines())
        return self._lines[1]


@dataclass
class Run:
    """A launched batch and its process group."""

    job: SparkJob
    process: subprocess.Popen[bytes]
    events: Path
    kill_at: float | None = None  # monotonic time to escalate a stop to SIGKILL


class SparkStore(Store):
    """The store of the ``spark`` back end, plus the queues and processes behind it."""

    def __init__(self, config: EmulatorConfig, clock: Clock, journal: Journal | None = None):
        self.spark = config.spark or SparkConfig()
        self.locations = Locations(self.spark.obs_root, self.spark.packages_dir)
        self._home: Path | None = None
        super().__init__(config, clock, journal)
        for job in [j for j in self.live.values() if j.id in self.launched]:
            self._lose(job)

    def clear(self) -> None:
        super().clear()
        self.runs: dict[str, Run] = {}
        self.waiting: dict[str, deque[str]] = {}
        self.launched: set[str] = set()

    def settled(self) -> dict[str, Job]:
        # Unfinished jobs leave ``live`` when their process reports, not on a planned end time.
        return self.live

    def create(self, valid: ValidRequest) -> Job:
        """Queue the job (``starting``) until its queue has a free slot."""
        job = SparkJob(
            id=str(uuid.uuid4()),
            seq=len(self.jobs),
            req_body=valid.req_body,
            queue=valid.queue,
            sc_type=valid.sc_type,
            segments=[(self.now_ms(), STARTING, 0)],
        )
        self._write({"op": "create", "job": job.to_record()})
        # Started by the next tick, never inside the create call: DLI's create always answers
        # ``starting``, and a missing file is found later, as DLI finds it (dli-api.md 2.1).
        return self.jobs[job.id]

    def stop(self, batch_id: str, reason: str) -> Job:
        """Cancel: ``dead`` now, and the whole process tree is stopped (SIGTERM, then SIGKILL)."""
        job = super().stop(batch_id, reason)
        run = self.runs.get(batch_id)
        if run is not None:
            _note(run.job, "WARN", f"{reason}: stopping the Spark processes")
            processes.signal_group(run.process, signal.SIGTERM)
            run.kill_at = time.monotonic() + STOP_GRACE_SECONDS
        return job

    def reset(self) -> None:
        for run in self.runs.values():
            processes.signal_group(run.process, signal.SIGKILL)
            run.process.wait()
        super().reset()

    def shutdown(self) -> None:
        """The emulator stops: stop every job's processes (the journal keeps them as lost)."""
        for run in self.runs.values():
            processes.signal_group(run.process, signal.SIGTERM)
        deadline = time.monotonic() + STOP_GRACE_SECONDS
        for run in self.runs.values():
            with contextlib.suppress(subprocess.TimeoutExpired):
                run.process.wait(timeout=max(deadline - time.monotonic(), 0.1))
            processes.signal_group(run.process, signal.SIGKILL)

    async def supervise(self) -> None:
        """Follow the processes for as long as the app serves."""
        while True:
            self.tick()
            await asyncio.sleep(TICK_SECONDS)

    def tick(self) -> None:
        """One look at every process, then start what the freed slots allow."""
        for run in list(self.runs.values()):
            self._watch(run)
        self.schedule()

    def schedule(self) -> None:
        """Launch waiting jobs, oldest first, while their queue has a free slot."""
        busy: dict[str, int] = {}
        for run in self.runs.values():
            busy[run.job.queue] = busy.get(run.job.queue, 0) + 1
        for queue, waiting in self.waiting.items():
            while waiting and busy.get(queue, 0) < self.spark.slots_of(queue):
                job = self.jobs[waiting[0]]
                assert isinstance(job, SparkJob)
                self._launch(job)
                busy[queue] = busy.get(queue, 0) + (job.id in self.runs)

    def _launch(self, job: SparkJob) -> None:
        folder = self._folder(job.id)
        events = folder / "events"
        events.mkdir(parents=True, exist_ok=True)
        self._write({"op": "launch", "id": job.id, "at": self.now_ms()})
        try:
            plan = submit.build(
                job.req_body,
                self.locations,
                app_name=job.name or job.id,
                events_dir=events,
                max_cores=self.spark.max_cores,
            )
            home = self._spark_home()
        except (MissingFile, processes.SparkUnavailable) as error:
            _note(job, "ERROR", str(error))
            self._advance(job, DEAD)
            return
        command = " ".join(plan.argv)
        _note(job, "INFO", f"batch {job.id} on queue {job.queue}: spark-submit {command}")
        if plan.ignored:
            _note(job, "WARN", f"no meaning in local mode, ignored: {', '.join(plan.ignored)}")
        try:
            process = processes.launch(home, plan.argv, folder / "driver.log", job.id, folder)
        except OSError as error:
            _note(job, "ERROR", f"spark-submit did not start: {error}")
            self._advance(job, DEAD)
            return
        self.runs[job.id] = Run(job, process, events)

    def _watch(self, run: Run) -> None:
        job = run.job
        if job.live and not job.app_id and (app_id := processes.app_id(run.events)):
            self._advance(job, RUNNING, app_id=app_id)
        if run.kill_at is not None and time.monotonic() >= run.kill_at:
            processes.signal_group(run.process, signal.SIGKILL)
        code = run.process.poll()
        if code is None:
            return
        if processes.group_alive(run.process):
            # The driver is gone but a child (a Python driver, a worker) is not: no orphans.
            processes.signal_group(run.process, signal.SIGKILL)
            return
        del self.runs[job.id]
        if job.live:
            if code:
                _note(job, "ERROR", f"spark-submit exited with code {code}")
            self._advance(job, SUCCESS if code == 0 else DEAD)

    def _advance(self, job: SparkJob, state: str, *, app_id: str = "") -> None:
        record = {"op": "advance", "id": job.id, "at": self.now_ms(), "state": state}
        self._write({**record, "app_id": app_id} if app_id else record)

    def _lose(self, job: Job) -> None:
        """After a restart: a job whose process was running is dead, and stays dead."""
        assert isinstance(job, SparkJob)
        processes.kill_batch(job.id)
        _note(job, "ERROR", LOST)
        super().stop(job.id, LOST)

    def _apply(self, record: dict[str, Any]) -> None:
        op = record["op"]
        if op == "create":
            job = SparkJob.from_record(dict(record["job"]))
            job.log_path = self._folder(job.id) / "driver.log"
            self._add(job)
            self.waiting.setdefault(job.queue, deque()).append(job.id)
        elif op == "launch":
            self.launched.add(record["id"])
            self._unqueue(self.jobs[record["id"]])
        elif op == "advance":
            ran = self.jobs[record["id"]]
            assert isinstance(ran, SparkJob)
            ran.app_id = record.get("app_id") or ran.app_id
            ran.set_segments([*ran.segments, (int(record["at"]), record["state"], 0)])
            if not ran.live:
                self._leave(ran)
        elif op == "stop":
            super()._apply(record)
            self._unqueue(self.jobs[record["id"]])
            self._leave(self.jobs[record["id"]])

    def _unqueue(self, job: Job) -> None:
        waiting = self.waiting.get(job.queue)
        if waiting is not None and job.id in waiting:
            waiting.remove(job.id)

    def _leave(self, job: Job) -> None:
        self.live.pop(job.id, None)
        self.live_by_queue.get(job.queue, {}).pop(job.id, None)

    def _folder(self, batch_id: str) -> Path:
        return self.spark.work_dir / batch_id

    def _spark_home(self) -> Path:
        if self._home is None:
            self._home = processes.spark_home()
        return self._home


def _note(job: SparkJob, level: str, message: str) -> None:
    """A line of the emulator's own in the job's driver log, in Spark's log4j layout."""
    if job.log_path is None:
        return
    job.log_path.parent.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%y/%m/%d %H:%M:%S")  # local time, as Spark's log4j layout
    with job.log_path.open("a", encoding="utf-8") as log:
        log.write(f"{stamp} {level} DliEmulator: {message}{os.linesep}")
