"""Observation: mirror DLI's state of the running attempt into the status.

DLI is read through the shared view of its jobs per queue (``polling.BatchCache``); a batch the
view does not show is asked for with its own GET.
"""

from __future__ import annotations

from dli_operator import reconcile
from dli_operator.dli.models import is_terminal
from dli_operator.driver import writer
from dli_operator.driver.context import Announce, Context, final, recovery
from dli_operator.resources.batchjob import DliBatchJob
from dli_operator.runtime import Dli


async def observe(
    ctx: Context, job: DliBatchJob, batch_id: str, dli: Dli, announce: Announce
) -> float | None:
    queue = job.spec.queue or job.spec.cluster_name or ""
    created = job.status.create_time
    created_ms = int(created.timestamp() * 1000) if created else None
    remote = await dli.cache.lookup(queue, batch_id, created_ms, key=job.metadata.key)
    if remote is None and dli.cache.too_new(queue, created_ms):
        return ctx.interval  # created after the last list began: the next one shows it
    if remote is None:
        await dli.limiter.acquire(urgent=True)
        remote = await dli.client.get_batch(batch_id)
    auto_recovery, max_retries = recovery(job)
    new = reconcile.observed(
        job.status,
        remote,
        now=ctx.clock(),
        auto_recovery=auto_recovery,
        max_retries=max_retries,
    )
    if final(new) or is_terminal(remote.state):
        dli.cache.forget(queue, batch_id)
    await writer.write(ctx, job, new, announce)
    return None if final(new) else ctx.interval
