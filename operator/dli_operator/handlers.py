"""The kopf glue, and the only module that registers kopf handlers. Each handler is short.

- ``reconcile`` (a daemon per unfinished job): runs driver steps until the job is final. A
  daemon rather than a timer because field handlers can wake it at once, a step never
  overlaps with itself, and a finished job has no task at all (so a restart costs no DLI call).
- ``cancel`` (on delete): cancels the running attempt per ``deletionPolicy``.
- ``nudge`` (on changes of ``suspend``, ``activeDeadlineSeconds``, ``ttlSecondsAfterFinished``):
  wakes the daemons, which apply the change.
- ``count`` (every watch event): keeps the jobs-by-phase metric exact.
- ``expire`` (a daemon per finished job with ``ttlSecondsAfterFinished``): deletes it when due.
- ``schedule`` (a daemon per ScheduledDliBatchJob): creates its children at their times; see
  the section at the end.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime, timedelta
from typing import Any

import kopf

from dli_operator import leadership, metrics, reconcile
from dli_operator.dli.errors import DliError
from dli_operator.driver import Announce, Driver
from dli_operator.kubeapi import KubeApi, KubeApiError
from dli_operator.resources.gitops import ttl_risk
from dli_operator.resources.status import FINAL_PHASES
from dli_operator.runtime import ConfigurationError, Runtime
from dli_operator.scheduler import PLURAL as PLURAL_SCHEDULES
from dli_operator.scheduler import Scheduler
from dli_operator.scheduling import SCHEDULE_LABEL
from dli_operator.settings import get_settings

GROUP, VERSION, PLURAL = "dli.dev", "v1alpha1", "dlibatchjobs"
RESOURCE = (GROUP, VERSION, PLURAL)
FINAL = frozenset(phase.value for phase in FINAL_PHASES)
# How long a stopping daemon may finish its step (a POST in flight) before kopf cancels it:
# longer than one DLI call may take (DLI_OPERATOR_DLI__READ_TIMEOUT_SECONDS, default 30).
STOP_GRACE_SECONDS = 40.0
# How long kopf waits for a cancelled daemon to end (deploy/'s terminationGracePeriodSeconds
# must exceed the grace plus this, so a rollout never kills a step mid-POST).
CANCELLATION_TIMEOUT_SECONDS = 5.0
# After an unexpected error in a step, try again this much later; the daemon never dies.
CRASH_BACKOFF_SECONDS = 10.0

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
    settings.peering.lifetime = config.peering.lifetime_seconds
    kube = KubeApi.from_connection(_login(settings), relogin=lambda: _login(settings))
    runtime = Runtime(config, kube)
    policy = reconcile.Policy(
        retry_backoff_seconds=config.reconcile.retry_backoff_seconds,
        retry_backoff_max_seconds=config.reconcile.retry_backoff_max_seconds,
    )
    memo.driver = Driver(runtime, policy)
    memo.leadership = asyncio.create_task(leadership.watch(kube, settings.peering))
    memo.wakeups = {}
    metrics.start_metrics_server(
        config.metrics.port, namespace_label=config.metrics.namespace_label
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


@kopf.on.startup(id="peering")
async def ensure_peering(settings: kopf.OperatorSettings, memo: kopf.Memo, **_: Any) -> None:
    """Create the peering object(s) ``--peering NAME`` names, before kopf starts to use them.

    Shipped as a manifest, the object would share an apply with its CRD, which is not served
    yet: `kubectl apply -k` and `helm install` fail on a fresh cluster (issue 15). And kopf,
    finding no object, would run without peering at all, silently.
    """
    if settings.peering.standalone or not settings.peering.mandatory:
        return
    kube = KubeApi.from_connection(_login(settings))
    try:
        for namespace in _peering_namespaces(settings, memo):
            try:
                if await kube.ensure_peering(settings.peering.name, namespace):
                    logger.info("created peering object %s", settings.peering.name)
            except KubeApiError as exc:
                if exc.status == 404:  # the peering CRD is in the same install, not served yet
                    raise kopf.TemporaryError(
                        f"peering CRD not served yet: {exc}", delay=5
                    ) from exc
                raise kopf.PermanentError(f"cannot create the peering object: {exc}") from exc
    finally:
        await kube.aclose()


def _peering_namespaces(settings: kopf.OperatorSettings, memo: kopf.Memo) -> list[str | None]:
    """Where kopf looks for the peering object: cluster-wide, or each served namespace.

    Namespace patterns (``team-*``) cannot be resolved ahead of time: their KopfPeerings are
    created by whoever creates those namespaces (docs/install.md).
    """
    if settings.peering.clusterwide:
        return [None]
    return [ns for ns in memo.get("namespaces", ()) if not set(ns) & set("*?[!")]


@kopf.on.cleanup(id="close")
async def close(memo: kopf.Memo, **_: Any) -> None:
    memo.leadership.cancel()
    await memo.driver.runtime.aclose()


def _unfinished(status: kopf.Status, **_: Any) -> bool:
    return status.get("phase") not in FINAL


def _expirable(spec: kopf.Spec, status: kopf.Status, **_: Any) -> bool:
    return status.get("phase") in FINAL and spec.get("ttlSecondsAfterFinished") is not None


@kopf.daemon(
    *RESOURCE,
    id="reconcile",
    when=_unfinished,
    # Asked to stop, a daemon finishes its step (a POST in flight included), then exits; only
    # one stuck past the grace is cancelled (kopf cancels at once without a backoff).
    cancellation_backoff=STOP_GRACE_SECONDS,
    cancellation_timeout=CANCELLATION_TIMEOUT_SECONDS,
)
async def reconcile_job(
    body: kopf.Body, stopped: kopf.DaemonStopped, memo: kopf.Memo, **_: Any
) -> None:
    driver: Driver = memo.driver
    try:
        while not stopped:
            delay = await _step(driver, body, stopped)
            if delay is None:
                return
            await _sleep(memo, body.meta.uid or "", stopped, delay)
    finally:
        memo.wakeups.pop(body.meta.uid, None)  # nothing per job stays in memory once it ends


async def _step(driver: Driver, body: kopf.Body, stopped: kopf.DaemonStopped) -> float | None:
    try:
        # A daemon asked to stop (peering pause, shutdown) finishes its step but sends no
        # create: the replica taking over may already own the attempt (issue 10, item 1).
        return await driver.step(body, _announcer(body), owned=lambda: not stopped)
    except (KubeApiError, DliError, ConfigurationError) as exc:
        logger.warning("step of %s/%s failed: %s", body.meta.namespace, body.meta.name, exc)
    except Exception:
        # A bug must not forget the job: log it and try again later.
        logger.exception("step of %s/%s crashed", body.meta.namespace, body.meta.name)
    return CRASH_BACKOFF_SECONDS


@kopf.on.delete(*RESOURCE, id="cancel")
async def cancel(body: kopf.Body, memo: kopf.Memo, **_: Any) -> None:
    try:
        delay = await memo.driver.finalize(body, _announcer(body))
    except (KubeApiError, DliError, ConfigurationError) as exc:
        raise kopf.TemporaryError(f"cannot cancel the DLI job yet: {exc}", delay=10) from exc
    if delay is not None:
        raise kopf.TemporaryError("a create that may still reach DLI is awaited", delay=delay)
    memo.wakeups.pop(body.meta.uid, None)


@kopf.on.field(*RESOURCE, field="spec.suspend", id="suspend")
@kopf.on.field(*RESOURCE, field="spec.activeDeadlineSeconds", id="deadline")
@kopf.on.field(*RESOURCE, field="spec.ttlSecondsAfterFinished", id="ttl")
async def nudge(body: kopf.Body, memo: kopf.Memo, **_: Any) -> None:
    if event := memo.wakeups.get(body.meta.uid):
        event.set()


@kopf.on.event(*RESOURCE, id="count")
def count(type: str, body: kopf.Body, **_: Any) -> None:
    # Every watch event, so the by-phase gauge is exact after a restart too.
    phase = None if type == "DELETED" else body.status.get("phase", "Pending")
    metrics.record_phase(body.meta.uid or "", phase)


@kopf.daemon(
    *RESOURCE, id="expire", when=_expirable, cancellation_timeout=CANCELLATION_TIMEOUT_SECONDS
)
async def expire(body: kopf.Body, stopped: kopf.DaemonStopped, memo: kopf.Memo, **_: Any) -> None:
    while not stopped:
        due = _ttl_due(body)
        if due is None:
            return
        remaining = (due - datetime.now(UTC)).total_seconds()
        if remaining <= 0:
            meta = body.meta
            await memo.driver.runtime.kube.delete_job(meta.namespace, meta.name, meta.uid)
            return
        await _sleep(memo, body.meta.uid or "", stopped, min(remaining, 60.0))


def _ttl_due(body: kopf.Body) -> datetime | None:
    ttl = body.spec.get("ttlSecondsAfterFinished")
    finished = body.status.get("completionTime")
    if ttl is None or not finished:
        return None
    return datetime.fromisoformat(finished) + timedelta(seconds=ttl)


def _announcer(body: kopf.Body) -> Announce:
    def announce(kind: str, reason: str, message: str) -> None:
        kopf.event(body, type=kind, reason=reason, message=message)

    return announce


async def _sleep(memo: kopf.Memo, uid: str, stopped: kopf.DaemonStopped, seconds: float) -> None:
    """Sleep ``seconds``, or less if the job is woken (a field changed) or stopped."""
    wakeup: asyncio.Event = memo.wakeups.setdefault(uid, asyncio.Event())
    wakeup.clear()
    woken = asyncio.ensure_future(wakeup.wait())
    halted = asyncio.ensure_future(stopped.wait())
    try:
        await asyncio.wait({woken, halted}, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
    finally:
        woken.cancel()
        halted.cancel()


# --- ScheduledDliBatchJob and GitOps help (issue 14) ----------------------------------------
# One daemon per schedule runs scheduler steps; children (labelled dli.dev/schedule) and spec
# changes wake it early. Children are ordinary DliBatchJobs, handled by the handlers above.

SCHEDULES = (GROUP, VERSION, PLURAL_SCHEDULES)


@kopf.on.startup(id="configure-schedules")
async def configure_schedules(memo: kopf.Memo, **_: Any) -> None:
    # After "configure" (startup handlers run in order): reuse its Kubernetes client.
    memo.scheduler = Scheduler(memo.driver.runtime.kube)


@kopf.daemon(*SCHEDULES, id="schedule", cancellation_timeout=5.0)
async def run_schedule(
    body: kopf.Body, stopped: kopf.DaemonStopped, memo: kopf.Memo, **_: Any
) -> None:
    scheduler: Scheduler = memo.scheduler
    meta = body.meta
    while not stopped:
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


@kopf.on.field(*SCHEDULES, field="spec", id="reschedule")
async def reschedule(body: kopf.Body, memo: kopf.Memo, **_: Any) -> None:
    _wake(memo, body.meta.uid)


@kopf.on.event(*RESOURCE, id="wake-schedule", labels={SCHEDULE_LABEL: kopf.PRESENT})
def wake_schedule(body: kopf.Body, memo: kopf.Memo, **_: Any) -> None:
    for owner in body.meta.get("ownerReferences") or []:
        if owner.get("kind") == "ScheduledDliBatchJob":
            _wake(memo, owner.get("uid"))


@kopf.on.create(*RESOURCE, id="gitops-ttl")
@kopf.on.field(*RESOURCE, field="spec.ttlSecondsAfterFinished", id="gitops-ttl-change")
def warn_gitops_ttl(body: kopf.Body, **_: Any) -> None:
    # The condition comes with the status (resources.status.summarize); this is its Event.
    risk = ttl_risk(
        body.meta.labels, body.meta.annotations, body.spec.get("ttlSecondsAfterFinished")
    )
    if risk:
        kopf.event(body, type="Warning", reason="TtlUnderGitOps", message=risk)


def _wake(memo: kopf.Memo, uid: str | None) -> None:
    if uid and (event := memo.wakeups.get(uid)):
        event.set()
