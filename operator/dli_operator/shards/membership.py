"""Which replicas are in the ring, from one Kubernetes Lease per replica, and what this one owns.

Every replica renews its own Lease (``{ring}-{identity}``, labelled ``dli.dev/shard-ring``)
and lists the ring's Leases; the live ones (``leases.is_live``, by this replica's own clock)
are the members, and ``ring.Ring`` assigns each job key to one of them. Two rules keep a
resharding safe without comparing clocks across replicas:

- Self-fencing: this replica owns nothing once its last successful renew is older than its
  lease (less a margin), whether the API server was unreachable or the process was stopped
  (monotonic time keeps counting through SIGSTOP); ``owns`` checks that at every call.
- Others are dropped only when their Lease stopped changing for its duration, as seen here,
  or at once when it is deleted (``leave`` on SIGTERM), so survivors take over at once.

Two replicas may still disagree for a moment about a moving job; the submission fence, not
this module, is what makes that harmless (issue 18).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, Protocol

from dli_operator import metrics
from dli_operator.kubeapi import KubeApiError
from dli_operator.shards import leases
from dli_operator.shards.ring import Ring

logger = logging.getLogger(__name__)

NEVER = float("-inf")


class LeaseApi(Protocol):
    """The Lease calls of ``kubeapi.KubeApi`` that membership needs (a fake in the tests)."""

    async def get_lease(self, namespace: str, name: str) -> dict[str, Any] | None: ...
    async def create_lease(self, namespace: str, body: dict[str, Any]) -> dict[str, Any]: ...
    async def replace_lease(self, namespace: str, body: dict[str, Any]) -> dict[str, Any]: ...
    async def delete_lease(self, namespace: str, name: str) -> None: ...
    async def list_leases(self, namespace: str, selector: str) -> list[dict[str, Any]]: ...


class Membership:
    """This replica's view of the ring, kept current by ``run()``."""

    def __init__(
        self,
        kube: LeaseApi,
        *,
        identity: str,
        namespace: str,
        ring: str,
        lease_seconds: float = 15.0,
        renew_seconds: float = 5.0,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        if not identity:
            raise ValueError("a shard member needs an identity (the pod name)")
        if not 0 < renew_seconds < lease_seconds:
            raise ValueError(f"renew_seconds {renew_seconds} must be in (0, {lease_seconds})")
        self._kube, self._identity, self._namespace = kube, identity, namespace
        self._ring_name, self._lease, self._renew = ring, lease_seconds, renew_seconds
        self._monotonic = monotonic
        self._name = leases.lease_name(ring, identity)
        self._own: dict[str, Any] | None = None
        self._renewed_at = NEVER
        self._left = False
        self._sightings: dict[str, leases.Sighting] = {}
        self._ring = Ring(())
        self._changed_at = monotonic()
        self._callbacks: list[Callable[[], None]] = []

    @property
    def identity(self) -> str:
        return self._identity

    @property
    def member(self) -> bool:
        """Whether this replica counts itself a member: its own Lease is surely still live."""
        return not self._left and leases.fresh(self._renewed_at, self._monotonic(), self._lease)

    @property
    def members(self) -> tuple[str, ...]:
        """The ring's members as of the last refresh, sorted."""
        return self._ring.members

    @property
    def changed_at(self) -> float:
        """Monotonic time of the last change of the members."""
        return self._changed_at

    def owner(self, key: str) -> str | None:
        """The member that owns ``key`` (``namespace/name``) in this replica's view."""
        return self._ring.owner(key)

    def assigned(self, key: str) -> bool:
        """Whether the ring, as last refreshed, gives ``key`` to this replica (whether or not
        it may act now: a replica fenced by its clock keeps its keys until the ring changes)."""
        return self._ring.owner(key) == self._identity

    def owns(self, key: str) -> bool:
        """Whether this replica may act on ``key`` now; never while its own Lease may have
        expired, even between two refreshes (the clock is read at every call)."""
        return self.member and self._ring.owner(key) == self._identity

    def on_change(self, callback: Callable[[], None]) -> None:
        """Call ``callback`` (no arguments) after every change of the members."""
        self._callbacks.append(callback)

    async def run(self) -> None:
        """Renew, list and refresh every ``renew_seconds`` until cancelled or ``leave()``."""
        while not self._left:
            await self.step()
            await asyncio.sleep(self._renew)

    async def step(self) -> None:
        """One round: renew this replica's Lease, list the ring's, refresh the members.

        A failed call is logged and retried next round; the members are refreshed anyway, so
        expiry (of others, and of this replica itself) is noticed without the API server.
        """
        try:
            await asyncio.wait_for(self._renew_own(), timeout=self._lease)
        except Exception as exc:  # any failure: retried next round, fenced by the clock
            self._own = None
            logger.warning("cannot renew shard lease %s/%s: %r", self._namespace, self._name, exc)
        try:
            await asyncio.wait_for(self._list(), timeout=self._lease)
        except Exception as exc:
            logger.warning("cannot list shard leases of ring %s: %r", self._ring_name, exc)
        self._refresh()

    async def leave(self) -> None:
        """Stop renewing and delete this replica's Lease, so the others take its jobs at once.

        This replica owns nothing from the first line on, whether or not the delete succeeds
        (then the Lease expires as if the process had died). ``run()`` ends by itself; a renew
        already in flight that lands after the delete leaves a Lease that expires the same way.
        """
        self._left = True
        self._renewed_at = NEVER
        self._refresh()
        try:
            await self._kube.delete_lease(self._namespace, self._name)
        except Exception as exc:
            logger.warning("cannot delete shard lease %s/%s: %r", self._namespace, self._name, exc)

    async def _renew_own(self) -> None:
        # The time the renew is sent, not answered: others see it no earlier (leases.fresh).
        sent, now = self._monotonic(), datetime.now(UTC)
        stored = self._own or await self._kube.get_lease(self._namespace, self._name)
        try:
            written = await self._write(stored, now)
        except KubeApiError as exc:
            if exc.status not in (404, 409):
                raise
            # Changed or deleted behind this replica's back (an admin, a former process of the
            # same pod): read it again and write once more, rather than lose a round.
            stored = await self._kube.get_lease(self._namespace, self._name)
            written = await self._write(stored, now)
        if written is not None:
            self._own, self._renewed_at = written, sent

    async def _write(self, stored: dict[str, Any] | None, now: datetime) -> dict[str, Any] | None:
        """Create or renew this replica's Lease; nothing once it has left."""
        if self._left:
            return None
        if stored is None:
            body = leases.new_lease(
                ring=self._ring_name,
                identity=self._identity,
                namespace=self._namespace,
                lease_seconds=self._lease,
                now=now,
            )
            return await self._kube.create_lease(self._namespace, body)
        body = leases.renewed(stored, identity=self._identity, lease_seconds=self._lease, now=now)
        return await self._kube.replace_lease(self._namespace, body)

    async def _list(self) -> None:
        selector = f"{leases.RING_LABEL}={self._ring_name}"
        listed = await self._kube.list_leases(self._namespace, selector)
        now, seen = self._monotonic(), {}
        for lease in listed:
            who = leases.holder(lease)
            if not who or who == self._identity:
                continue
            duration = leases.duration(lease, self._lease)
            seen[who] = leases.observe(
                self._sightings.get(who), leases.version(lease), duration, now
            )
        self._sightings = seen  # a Lease no longer listed was deleted: gone at once

    def _refresh(self) -> None:
        now = self._monotonic()
        live = {who for who, s in self._sightings.items() if leases.is_live(s, now)}
        member = self.member
        if member:
            live.add(self._identity)
        metrics.SHARD_MEMBER.set(1 if member else 0)
        metrics.SHARD_MEMBERS.set(len(live))
        if tuple(sorted(live)) == self._ring.members:
            return
        self._ring, self._changed_at = Ring(live), now
        logger.info("shard ring %s: members %s", self._ring_name, ", ".join(self._ring.members))
        for callback in list(self._callbacks):
            try:
                callback()
            except Exception:
                logger.exception("shard change callback %r failed", callback)
