"""``kubectl dli logs``: page through DLI's driver log of a job's attempt, and follow it.

DLI serves a batch's driver log in windows (``GET /v2.0/{project_id}/batches/{batch_id}/log``,
dli_02_0128: ``from`` is the first line, ``size`` the count, ``total`` the lines so far). The
operator resubmits a dead attempt as a new batch, so an attempt is a batch id from
``status.attempts``, and DLI's own ``index`` (its internal retries) stays at its default.
Following re-reads the job between pages: a new attempt is followed on, and the command ends once
the job is final and its log has been read to the end.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from dli_operator.dli.client import DliClient
from dli_operator.kubectl.access import Flags, PluginError, Session
from dli_operator.resources.batchjob import DliBatchJob

# Lines per request: DLI's own default window (dli_02_0128: "the last 100 lines by default").
PAGE_LINES = 100

Echo = Callable[[str], None]


@dataclass(frozen=True)
class LogRequest:
    namespace: str
    name: str
    attempt: int | None = None
    tail: int | None = None
    follow: bool = False
    interval: float = 2.0
    flags: Flags = field(default_factory=Flags)
    """The user's DLI settings given as options (access.resolve)."""


def batch_of(job: DliBatchJob, attempt: int | None) -> tuple[int, str] | None:
    """(attempt, batch id) of the requested attempt, or of the newest one that has a batch."""
    entries = [a for a in job.status.attempts if a.batch_id]
    if attempt is not None:
        chosen = [a for a in job.status.attempts if a.attempt == attempt]
        if not chosen:
            known = ", ".join(str(a.attempt) for a in job.status.attempts) or "none yet"
            raise PluginError(f"{_name(job)} has no attempt {attempt} (attempts: {known})")
        entries = [a for a in chosen if a.batch_id]
    if not entries:
        return None
    return entries[-1].attempt, entries[-1].batch_id or ""


async def show_logs(session: Session, request: LogRequest, echo: Echo) -> None:
    """Print the log; with ``follow``, keep printing until the job is final."""
    job, _ = await session.job(request.namespace, request.name)
    found = batch_of(job, request.attempt)
    if request.follow:
        async with await session.dli_for(job, request.flags) as client:
            await _follow(session, client, request, echo)
        return
    if found is None:
        raise _no_batch(job, hint="; try -f")
    async with await session.dli_for(job, request.flags) as client:
        await _print_from(client, found[1], await _start(client, found[1], request.tail), echo)


async def _follow(session: Session, client: DliClient, request: LogRequest, echo: Echo) -> None:
    current: tuple[int, str] | None = None
    offset = 0
    while True:
        job, _ = await session.job(request.namespace, request.name)
        found = batch_of(job, request.attempt)
        if found is not None and found != current:
            if current is not None:
                echo(f"--- attempt {found[0]}: DLI batch {found[1]} ---")
            tail = request.tail if current is None else None
            current, offset = found, await _start(client, found[1], tail)
        if current is not None:
            offset = await _print_from(client, current[1], offset, echo)
        # Final, or (for a chosen attempt) finished: the page just read came after that was
        # stored, so it holds the whole log.
        final = job.status.phase is not None and job.status.phase.is_final
        if final and current is None:
            raise _no_batch(job)  # it ended before DLI ever had it (rejected, cancelled)
        if final or (request.attempt is not None and _finished(job, request.attempt)):
            return
        await session.sleep(request.interval)


async def _start(client: DliClient, batch_id: str, tail: int | None) -> int:
    """The first line to print: 0, or ``tail`` lines before the end."""
    if tail is None:
        return 0
    page = await client.get_batch_log(batch_id, from_=0, size=1)
    return max(0, page.total - tail)


async def _print_from(client: DliClient, batch_id: str, offset: int, echo: Echo) -> int:
    """Print every line from ``offset`` on; return the offset after the last one printed."""
    while True:
        page = await client.get_batch_log(batch_id, from_=offset, size=PAGE_LINES)
        for line in page.log:
            echo(line)
        offset += len(page.log)
        if not page.log or offset >= page.total:
            return offset


def _finished(job: DliBatchJob, attempt: int) -> bool:
    return any(a.attempt == attempt and a.finish_time for a in job.status.attempts)


def _no_batch(job: DliBatchJob, hint: str = "") -> PluginError:
    why = f": {job.status.reason}" if job.status.reason else ""
    return PluginError(f"{_name(job)} has no DLI batch (phase {_phase(job)}{why}){hint}")


def _name(job: DliBatchJob) -> str:
    return f"dlibatchjob {job.metadata.namespace}/{job.metadata.name}"


def _phase(job: DliBatchJob) -> str:
    return job.status.phase.value if job.status.phase else "Pending"
