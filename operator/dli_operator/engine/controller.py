"""The engine's workers: each takes a due key, steps it once, and says when it is due again.

controller-runtime's ``Reconcile(key) -> RequeueAfter`` in Python. The informer reports every
change into ``observe``, which updates the cache and makes a key due when something a step
must see happened (a new object, a spec change, a deletion); everything else is a timer the
previous step asked for. A step that raises is retried with the queue's per-key backoff.

The finalizer is the engine's own (kopf's name, so objects of 0.2 keep working): added before
a job's first step, removed once its DLI batch is cancelled or orphaned. A finished job is a
``Finished`` record with at most one timer, its TTL.

Ownership (``Ownership``): with sharding a replica steps only the keys its shard owns. When
the members change, every cached key is looked at again; a key that moved here is first
stepped after ``handover_grace`` seconds, long enough for the old owner to see the change and
stop, and it goes through the submission fence like any restart would (issue 18).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any, Protocol

from dli_operator import metrics
from dli_operator.dli.errors import DliError
from dli_operator.driver import Announce, Driver
from dli_operator.engine.cache import Body, Finished, ObjectCache, is_deleting, key_of
from dli_operator.engine.events import EventPoster
from dli_operator.engine.lane import SubmitLane, Wait
from dli_operator.engine.queue import WorkQueue
from dli_operator.kubeapi import KubeApi, KubeApiError
from dli_operator.runtime import ConfigurationError

logger = logging.getLogger(__name__)

FINALIZER = "dli.dev/finalizer"
# After an error reaching DLI or Kubernetes in a deletion, try again this much later.
FINALIZE_RETRY_SECONDS = 10.0
# A key this replica holds while its Lease may have expired is looked at again this soon.
FENCED_RETRY_SECONDS = 1.0
# How long shutdown lets steps in flight finish (a POST included) before cancelling them:
# longer than one DLI call may take; deploy/'s terminationGracePeriodSeconds exceeds it.
STOP_GRACE_SECONDS = 40.0
# How often the submit lane is looked over for waits to announce (lane.py).
LANE_CHECK_SECONDS = 2.0


class Ownership(Protocol):
    """Which keys this replica steps (the shard membership, or everything)."""

    def assigned(self, key: str) -> bool:
        """The ring gives ``key`` to this replica: it keeps the key's timer."""

    def owns(self, key: str) -> bool:
        """Assigned, and this replica may act now (its own Lease is fresh)."""

    def on_change(self, callback: Callable[[], None]) -> None: ...


class Everything:
    """The only replica: owns every key."""

    def assigned(self, key: str) -> bool:
        return True

    def owns(self, key: str) -> bool:
        return True

    def on_change(self, callback: Callable[[], None]) -> None:
        return None


class Engine:
    """Steps every owned DliBatchJob with a bounded pool of workers."""

    def __init__(
        self,
        driver: Driver,
        kube: KubeApi,
        events: EventPoster,
        *,
        workers: int,
        ownership: Ownership | None = None,
        handover_grace: float = 0.0,
        on_child: Callable[[Mapping[str, Any]], None] | None = None,
        submit_rate: Callable[[], float] = lambda: float("inf"),
        slowest_step: float = 90.0,
    ) -> None:
        self.driver = driver
        self.kube = kube
        self.events = events
        self.cache = ObjectCache()
        self.queue = WorkQueue()
        self.ownership: Ownership = ownership or Everything()
        self._workers = workers
        self._grace = handover_grace
        self._on_child = on_child
        self._owned: set[str] = set()
        self._stopping = False
        # Steps that may wait long for DLI (a new attempt) take at most half the workers, so
        # polls and cancels always find one free (lane.py).
        self.lane = SubmitLane(max(1, workers // 2), submit_rate, slowest_step)
        self._waits: dict[str, Wait] = {}
        self.ownership.on_change(self.resync)
        metrics.ENGINE_QUEUE.set_function(lambda: len(self.queue))
        metrics.ENGINE_IN_FLIGHT.set_function(lambda: self.queue.in_flight)
        metrics.ENGINE_PARKED.set_function(lambda: len(self.lane))

    # --- feeding ----------------------------------------------------------------------------

    def wake(self, key: str) -> None:
        """Make a known job due now (a list showed its DLI batch final: polling.py)."""
        if key in self.cache:
            self.queue.add(key)

    def observe(self, kind: str, body: Mapping[str, Any]) -> None:
        """The informer's handler: keep the cache, the metrics and the timers current."""
        key = key_of(body)
        old = self.cache.get(key)
        if self._on_child is not None:
            self._on_child(body)
        if kind == "DELETED":
            self._gone(key, old)
            return
        entry = self.cache.upsert(body)
        uid = str((body.get("metadata") or {}).get("uid", ""))
        metrics.record_phase(uid, (body.get("status") or {}).get("phase", "Pending"))
        if _uid(old) not in ("", uid):
            self.driver.ledger.forget(_uid(old))  # the same name, a new object
            old = None
        if not self.ownership.assigned(key):
            return
        self._own(key)
        if isinstance(entry, Finished):
            self._time_ttl(key, entry)
        elif _needs_step(old, entry):
            self.queue.add(key)

    def resync(self) -> None:
        """The members changed: take up the keys that moved here, drop those that left."""
        for key in self.cache:
            entry = self.cache.get(key)
            if entry is None:
                continue
            if not self.ownership.assigned(key):
                if key in self._owned:
                    self._owned.discard(key)
                    self.queue.discard(key)
                    self._release(key)
                    # Its claims and written statuses are another replica's business now
                    # (a step still in flight ends normally: the queue never runs two).
                    self.driver.ledger.forget(_uid(entry))
                    metrics.SHARD_HANDOVERS.labels("out").inc()
                continue
            if key not in self._owned:
                self._own(key, handover=True)
                if isinstance(entry, Finished):
                    self._time_ttl(key, entry)
                else:
                    self.queue.add(key, self._grace)
        metrics.SHARD_OWNED_JOBS.set(len(self._owned))

    def _own(self, key: str, *, handover: bool = False) -> None:
        if key not in self._owned:
            self._owned.add(key)
            if handover:
                metrics.SHARD_HANDOVERS.labels("in").inc()
            metrics.SHARD_OWNED_JOBS.set(len(self._owned))

    def _gone(self, key: str, old: Body | Finished | None) -> None:
        self.cache.remove(key)
        self._release(key)
        self.queue.discard(key)
        self._owned.discard(key)
        metrics.SHARD_OWNED_JOBS.set(len(self._owned))
        if old is not None:
            self.driver.ledger.forget(_uid(old))
            metrics.record_phase(_uid(old), None)

    def _time_ttl(self, key: str, entry: Finished) -> None:
        if entry.ttl_due is None:
            self.queue.discard(key)
        else:
            self.queue.add(key, (entry.ttl_due - datetime.now(UTC)).total_seconds())

    # --- working ----------------------------------------------------------------------------

    async def run(self) -> None:
        """Run the workers until cancelled; then let steps in flight end (see ``stop``)."""
        tasks = [asyncio.create_task(self._work()) for _ in range(self._workers)]
        tasks.append(asyncio.create_task(self._watch_lane()))
        try:
            await asyncio.gather(*tasks)
        finally:
            for task in tasks:
                task.cancel()

    async def stop(self) -> None:
        """No new steps; steps in flight send nothing more (their ``owned`` turns false)."""
        self._stopping = True
        self.queue.close()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.queue.drained(), STOP_GRACE_SECONDS)

    async def _work(self) -> None:
        while (key := await self.queue.get()) is not None:
            lane = _submits(self.cache.get(key))
            if not lane:
                self._release(key)
            elif not self.lane.enter(key):
                try:
                    await self._show_wait(key)
                finally:
                    self.queue.done(key)
                continue
            delay: float | None
            try:
                delay = await self.reconcile(key)
                self.queue.forget(key)
            except Exception:
                # A bug must not forget the job: log it and try again later.
                logger.exception("step of %s crashed", key)
                delay = self.queue.backoff(key)
            finally:
                self.queue.done(key)
                if lane:
                    self._hand_slots(self.lane.leave())
            if delay is not None and not self._stopping:
                self.queue.add(key, delay)

    def _release(self, key: str) -> None:
        self._waits.pop(key, None)
        self._hand_slots(self.lane.release(key))

    def _hand_slots(self, keys: list[str]) -> None:
        """The parked keys handed a slot in the submit lane are due now."""
        for key in keys:
            self._waits.pop(key, None)
            self.queue.add(key)

    async def _watch_lane(self) -> None:
        """Make the parked keys whose wait is to be announced due (``_show_wait`` writes it)."""
        while not self._stopping:
            await asyncio.sleep(LANE_CHECK_SECONDS)
            for wait in self.lane.overdue():
                self.lane.noticed(wait.key)
                self._waits[wait.key] = wait
                self.queue.add(wait.key)

    async def _show_wait(self, key: str) -> None:
        """Announce the wait of a key parked in the submit lane, if it is due (lane.py)."""
        wait, entry = self._waits.pop(key, None), self.cache.get(key)
        if wait is None or entry is None or isinstance(entry, Finished):
            return
        if self._stopping or not self.ownership.owns(key):
            return
        message = (
            f"waiting for a DLI request slot: about {wait.seconds:.0f}s, "
            f"{wait.ahead} submissions ahead"
        )
        try:
            await self.driver.show_wait(entry, self._announcer(entry), message)
        except KubeApiError as exc:
            logger.info("could not show the wait of %s: %s", key, exc)
        except Exception:
            logger.exception("showing the wait of %s crashed", key)  # the key stays parked

    async def reconcile(self, key: str) -> float | None:
        """One step of ``key``: the seconds until it is due again, or None (no timer)."""
        entry = self.cache.get(key)
        if entry is None or self._stopping or not self.ownership.assigned(key):
            return None
        if not self.ownership.owns(key):
            # Fenced by its own clock (a Lease it could not renew in time, a SIGSTOP): keep the
            # timer, act once the Lease is renewed or the ring hands the key to another.
            return FENCED_RETRY_SECONDS
        if isinstance(entry, Finished):
            return await self._expire(key, entry)
        if is_deleting(entry):
            return await self._finalize(key, entry)
        if _wants_finalizer(entry) and FINALIZER not in _finalizers(entry):
            stored = await self._set_finalizer(entry, add=True)
            if stored is None:
                return None
            self.cache.upsert(stored)
            entry = stored
        return await self.driver.step(entry, self._announcer(entry), owned=lambda: self._holds(key))

    def _holds(self, key: str) -> bool:
        """Checked right before a create call: still running, and still the owner."""
        return not self._stopping and self.ownership.owns(key)

    async def _expire(self, key: str, entry: Finished) -> float | None:
        if entry.ttl_due is None:
            return None
        remaining = (entry.ttl_due - datetime.now(UTC)).total_seconds()
        if remaining > 0:
            return remaining
        namespace, _, name = key.partition("/")
        await self.kube.delete_job(namespace, name, entry.uid)
        return None

    async def _finalize(self, key: str, body: Body) -> float | None:
        if FINALIZER not in _finalizers(body):
            return None
        try:
            delay = await self.driver.finalize(body, self._announcer(body))
        except (KubeApiError, DliError, ConfigurationError) as exc:
            logger.warning("cannot cancel the DLI job of %s yet: %s", key, exc)
            return FINALIZE_RETRY_SECONDS
        if delay is not None:
            return delay  # a create that may still reach DLI is awaited, to cancel it
        await self._set_finalizer(body, add=False)
        return None

    async def _set_finalizer(self, body: Body, *, add: bool) -> Body | None:
        """Add or remove our finalizer (conditional on the version); None if the job is gone."""
        meta = body.get("metadata") or {}
        namespace, name = str(meta.get("namespace", "")), str(meta.get("name", ""))
        for _ in range(3):
            current = [f for f in _finalizers(body) if f != FINALIZER]
            wanted = [*current, FINALIZER] if add else current
            version = str((body.get("metadata") or {}).get("resourceVersion", ""))
            try:
                return await self.kube.set_finalizers(
                    namespace, name, wanted, resource_version=version
                )
            except KubeApiError as exc:
                if exc.status == 404:
                    return None
                if exc.status != 409:
                    raise
            fresh = await self.kube.get_object("dlibatchjobs", namespace, name)
            if fresh is None or (meta.get("uid") and fresh["metadata"].get("uid") != meta["uid"]):
                return None
            body = fresh
        raise KubeApiError(f"{namespace}/{name}: finalizers keep changing", 409)

    def _announcer(self, body: Mapping[str, Any]) -> Announce:
        def announce(kind: str, reason: str, message: str) -> None:
            self.events.post(body, kind, reason, message)

        return announce


def _needs_step(old: Body | Finished | None, new: Body) -> bool:
    """Whether a change must be acted on now rather than at the job's next timer."""
    if old is None or isinstance(old, Finished):
        return True  # new to this process (a start, a relist), or its status was reset
    if is_deleting(new) and not is_deleting(old):
        return True
    generation = (new.get("metadata") or {}).get("generation")
    return bool(generation != (old.get("metadata") or {}).get("generation"))


def _submits(entry: Body | Finished | None) -> bool:
    """Whether the next step of ``entry`` is likely a submission (it may wait for DLI)."""
    if entry is None or isinstance(entry, Finished) or is_deleting(entry):
        return False
    status = entry.get("status") or {}
    return not status.get("batchId") or bool(status.get("submission"))


def _finalizers(body: Mapping[str, Any]) -> list[str]:
    return list((body.get("metadata") or {}).get("finalizers") or [])


def _wants_finalizer(body: Mapping[str, Any]) -> bool:
    # An Orphan job has nothing to cancel on deletion: no finalizer, one write fewer.
    return (body.get("spec") or {}).get("deletionPolicy") != "Orphan"


def _uid(entry: Body | Finished | None) -> str:
    if entry is None:
        return ""
    if isinstance(entry, Finished):
        return entry.uid
    return str((entry.get("metadata") or {}).get("uid", ""))
