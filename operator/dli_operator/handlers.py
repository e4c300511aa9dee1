"""The kopf glue, and the only module that registers kopf handlers. Each handler is short.

kopf runs the process: login, startup and cleanup, the liveness probe, and the schedules.
DliBatchJobs are the engine's (``dli_operator.engine``, issue 18): kopf stopped a job's daemon
whenever a replica was paused (its active/standby mode) and respawned it only on a later watch
event, which stranded jobs; and its finalizer and annotation patches on every object collided
with the conditional status writes (409 storms at 10,000 jobs). So no kopf handler watches
DliBatchJobs any more, and kopf runs standalone: replicas share the jobs by shard Leases.

- ``configure`` (startup): builds the runtime, the driver and the engine, and starts them.
- ``stop`` (cleanup): lets the steps in flight end, then leaves the shard ring.
- ``schedule`` (a daemon per ScheduledDliBatchJob): creates its children at their times; see
  the section at the end.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping
from typing import Any

import kopf

from dli_operator import metrics, reconcile
from dli_operator.driver import Announce, Driver
from dli_operator.engine.controller import STOP_GRACE_SECONDS, Engine
from dli_operator.engine.events import EventPoster
from dli_operator.engine.informer import Informer
from dli_operator.kubeapi import KubeApi, KubeApiError
from dli_operator.runtime import Runtime
from dli_operator.scheduler import PLURAL as PLURAL_SCHEDULES
from dli_operator.scheduler import Scheduler
from dli_operator.scheduling import SCHEDULE_LABEL
from dli_operator.settings import Settings, get_settings
from dli_operator.shards.membership import Membership

__all__ = ["CANCELLATION_TIMEOUT_SECONDS", "STOP_GRACE_SECONDS"]

GROUP, VERSION, PLURAL = "dli.dev", "v1alpha1", "dlibatchjobs"
# How long kopf waits for a cancelled schedule daemon, and the engine for its steps after the
# grace (deploy/'s terminationGracePeriodSeconds must exceed STOP_GRACE_SECONDS plus this, so
# a rollout never kills a step mid-POST).
CANCELLATION_TIMEOUT_SECONDS = 5.0
# After an unexpected error in a schedule step, try again this much later.
CRASH_BACKOFF_SECONDS = 10.0
# A schedule another shard owns is looked at again this often (and on every membership change).
NOT_OURS_SECONDS = 30.0

logger = logging.getLogger(__name__)


@kopf.on.startup(id="configure")
async def configure(settings: kopf.OperatorSettings, memo: kopf.Memo, **_: Any) -> None:
    config = get_settings()
    settings.persistence.finalizer = f"{GROUP}/finalizer"
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=GROUP)
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
        prefix=GROUP, key="last-handled-configuration"
    )
    # Our own Events say what happened; kopf's per-handler chatter would drown them.
    settings.posting.level = logging.WARNING
    settings.watching.server_timeout = 300
    kube = KubeApi.from_connection(_login(settings), relogin=lambda: _login(settings))
    runtime = Runtime(config, kube)
    policy = reconcile.Policy(
        retry_backoff_seconds=config.reconcile.retry_backoff_seconds,
        retry_backoff_max_seconds=config.reconcile.retry_backoff_max_seconds,
    )
    memo.driver = Driver(runtime, policy)
    memo.wakeups = {}
    memo.events = EventPoster(kube)
    memo.membership = _membership(config, kube)
    if (membership := memo.membership) is not None:
        # The replicas of a ring share each DLI rate budget evenly; the sum stays within it.
        membership.on_change(lambda: runtime.share_budget(len(membership.members)))
        # A schedule whose shard moved here is stepped now, not NOT_OURS_SECONDS later.
        membership.on_change(lambda: _wake_all(memo))
    memo.engine = _engine(config, memo)
    runtime.wake = memo.engine.wake
    informer = Informer(kube, PLURAL, memo.engine.observe, namespaces=memo.get("namespaces", ()))
    memo.tasks = [
        asyncio.create_task(informer.run(), name="informer"),
        asyncio.create_task(memo.engine.run(), name="engine"),
        asyncio.create_task(memo.events.run(), name="events"),
        asyncio.create_task(_report_synced(informer, memo.engine), name="synced"),
    ]
    if memo.membership is not None:
        memo.tasks.append(asyncio.create_task(memo.membership.run(), name="membership"))
    metrics.start_metrics_server(
        config.metrics.port, namespace_label=config.metrics.namespace_label
    )


async def _report_synced(informer: Informer, engine: Engine) -> None:
    """Say once when every served object is known (the benchmark's "ready")."""
    began = time.monotonic()
    await informer.synced.wait()
    logger.info(
        "engine synced: %d DliBatchJobs listed (%d with a timer) in %.1fs",
        len(engine.cache),
        len(engine.queue),
        time.monotonic() - began,
    )


def _membership(config: Settings, kube: KubeApi) -> Membership | None:
    """This replica's place in the shard ring, or None for the only replica (the default)."""
    sharding = config.sharding
    if not sharding.enabled:
        # The whole ring, always a member (engine.controller.Everything): no shard alert fires.
        metrics.SHARD_MEMBER.set(1)
        metrics.SHARD_MEMBERS.set(1)
        return None
    return Membership(
        kube,
        identity=sharding.resolved_identity(),
        namespace=sharding.namespace,
        ring=sharding.ring,
        lease_seconds=sharding.lease_seconds,
        renew_seconds=sharding.renew_seconds,
    )


def _engine(config: Settings, memo: kopf.Memo) -> Engine:
    def on_child(body: Mapping[str, Any]) -> None:
        # A schedule's child changed: its schedule may start the next run now.
        meta = body.get("metadata") or {}
        if SCHEDULE_LABEL in (meta.get("labels") or {}):
            for owner in meta.get("ownerReferences") or []:
                if owner.get("kind") == "ScheduledDliBatchJob":
                    _wake(memo, owner.get("uid"))

    return Engine(
        memo.driver,
        memo.driver.runtime.kube,
        memo.events,
        workers=config.engine.workers,
        ownership=memo.membership,
        # A key that moved here waits one renew, by when its old owner has seen the move.
        handover_grace=config.sharding.renew_seconds if memo.membership else 0.0,
        on_child=on_child,
        submit_rate=lambda: memo.driver.runtime.submit_rate,
        slowest_step=config.dli.request_deadline_seconds,
    )


@kopf.on.login(id="login")
def login(settings: kopf.OperatorSettings, **_: Any) -> kopf.ConnectionInfo:
    """kopf's own login for kopf and for KubeApi alike: one set of credentials, one code path.

    kopf would pick ``login_via_client`` whenever the ``kubernetes`` package is importable (it
    is in the test environment, not in the image); naming the login keeps tests and image alike.
    """
    return _login(settings)


def _login(settings: kopf.OperatorSettings) -> kopf.ConnectionInfo:
    # In a pod: the mounted ServiceAccount token, re-read on every call (the kubelet rotates it),
    # so a 401 relogin picks up the new one. Elsewhere: $KUBECONFIG or ~/.kube/config (tokens,
    # client certificates; no exec plugins: kopf's minimal kubeconfig reader).
    info = kopf.login_with_service_account(settings=settings) or kopf.login_with_kubeconfig(
        settings=settings
    )
    if info is None:
        raise kopf.PermanentError("no Kubernetes credentials found (kubeconfig or in-cluster)")
    return info


@kopf.on.cleanup(id="close")
async def close(memo: kopf.Memo, **_: Any) -> None:
    if memo.membership is not None:
        # First: the others take this replica's jobs at once, while its steps in flight see
        # they no longer own them and send nothing (the fence settles any race).
        await memo.membership.leave()
    await memo.engine.stop()
    for task in memo.tasks:
        task.cancel()
    await asyncio.gather(*memo.tasks, return_exceptions=True)
    await memo.events.flush()
    await memo.driver.runtime.aclose()


# --- ScheduledDliBatchJob (issue 14) --------------------------------------------------------
# One daemon per schedule runs scheduler steps; children (labelled dli.dev/schedule) and spec
# changes wake it early. Children are ordinary DliBatchJobs, stepped by the engine. With
# sharding, a schedule is stepped only by the replica whose shard owns its key; the children's
# names are their scheduled times, so even two replicas racing create each run once.

SCHEDULES = (GROUP, VERSION, PLURAL_SCHEDULES)


@kopf.on.startup(id="configure-schedules")
async def configure_schedules(memo: kopf.Memo, **_: Any) -> None:
    # After "configure" (startup handlers run in order): reuse its Kubernetes client.
    memo.scheduler = Scheduler(memo.driver.runtime.kube)


@kopf.daemon(*SCHEDULES, id="schedule", cancellation_timeout=CANCELLATION_TIMEOUT_SECONDS)
async def run_schedule(
    body: kopf.Body, stopped: kopf.DaemonStopped, memo: kopf.Memo, **_: Any
) -> None:
    scheduler: Scheduler = memo.scheduler
    engine: Engine = memo.engine
    meta = body.meta
    key = f"{meta.namespace}/{meta.name}"
    while not stopped:
        if not engine.ownership.owns(key):
            await _sleep(memo, meta.uid or "", stopped, NOT_OURS_SECONDS)
            continue
        try:
            delay = await scheduler.step(meta.namespace or "", meta.name or "", _announcer(body))
        except KubeApiError as exc:
            logger.warning("schedule %s/%s: %s", meta.namespace, meta.name, exc)
            delay = CRASH_BACKOFF_SECONDS
        except Exception:
            logger.exception("schedule %s/%s crashed", meta.namespace, meta.name)
            delay = CRASH_BACKOFF_SECONDS
        await _sleep(memo, meta.uid or "", stopped, delay)
    scheduler.forget(meta.uid or "")
    memo.wakeups.pop(meta.uid, None)


@kopf.on.field(*SCHEDULES, field="spec", id="reschedule")
async def reschedule(body: kopf.Body, memo: kopf.Memo, **_: Any) -> None:
    _wake(memo, body.meta.uid)


def _announcer(body: kopf.Body) -> Announce:
    def announce(kind: str, reason: str, message: str) -> None:
        kopf.event(body, type=kind, reason=reason, message=message)

    return announce


async def _sleep(memo: kopf.Memo, uid: str, stopped: kopf.DaemonStopped, seconds: float) -> None:
    """Sleep ``seconds``, or less if the schedule is woken (a change) or stopped."""
    wakeup: asyncio.Event = memo.wakeups.setdefault(uid, asyncio.Event())
    wakeup.clear()
    woken = asyncio.ensure_future(wakeup.wait())
    halted = asyncio.ensure_future(stopped.wait())
    try:
        await asyncio.wait({woken, halted}, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
    finally:
        woken.cancel()
        halted.cancel()


def _wake(memo: kopf.Memo, uid: str | None) -> None:
    if uid and (event := memo.wakeups.get(uid)):
        event.set()


def _wake_all(memo: kopf.Memo) -> None:
    for event in memo.wakeups.values():
        event.set()
