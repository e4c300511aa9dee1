"""The shard Leases as data, and the liveness rule that reads them (pure, no I/O).

A replica's Lease says who holds it and for how long (``leaseDurationSeconds``); its
``renewTime`` is written from the holder's wall clock, which no other replica may trust (clock
skew is the one assumption the settle period already makes; issue 18 adds no other). So a
Lease is judged as client-go's leader election judges its record (tools/leaderelection,
``observedTime``): by the local monotonic time at which this replica last saw the Lease change.
A Lease is live while it changed less than its duration ago by the observer's own clock, and a
deleted one is gone at once. ``renewTime`` is written for people (``kubectl get lease``), never
compared.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

RING_LABEL = "dli.dev/shard-ring"
"""The label naming the ring a Lease belongs to; the members are listed by it."""


@dataclass(frozen=True)
class Sighting:
    """What this replica last saw of one Lease: its version, since when (local monotonic)."""

    version: str
    changed_at: float
    duration: float


def observe(previous: Sighting | None, version: str, duration: float, now: float) -> Sighting:
    """The sighting after listing a Lease at ``version``; only a change restarts its clock."""
    if previous is not None and previous.version == version:
        return replace(previous, duration=duration)
    return Sighting(version, now, duration)


def is_live(sighting: Sighting, now: float) -> bool:
    """Whether a Lease last seen to change at ``sighting.changed_at`` still counts at ``now``."""
    return now - sighting.changed_at < sighting.duration


def fresh(renewed_at: float, now: float, lease_seconds: float) -> bool:
    """Whether this replica may still count itself a member, ``renewed_at`` being the local
    time its last successful renew was *sent*.

    Others restart their clock for this Lease when they see the renew, which is after it was
    sent, so they count it live until later than ``renewed_at + lease_seconds``. Stopping
    ``fence_margin`` earlier covers a difference in clock rates and the time to stop acting.
    """
    return now - renewed_at < lease_seconds - fence_margin(lease_seconds)


def fence_margin(lease_seconds: float) -> float:
    """How much sooner than the others this replica stops counting its own Lease: a tenth of
    it, at most 2 s (client-go's renew deadline is a similar fraction of the lease)."""
    return min(2.0, lease_seconds / 10)


def lease_name(ring: str, identity: str) -> str:
    return f"{ring}-{identity}"


def micro_time(moment: datetime) -> str:
    """A Kubernetes MicroTime: RFC 3339 in UTC with microseconds (``...T00:00:00.000000Z``)."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def new_lease(
    *, ring: str, identity: str, namespace: str, lease_seconds: float, now: datetime
) -> dict[str, Any]:
    """The body that creates this replica's Lease, acquired and renewed ``now``."""
    return {
        "apiVersion": "coordination.k8s.io/v1",
        "kind": "Lease",
        "metadata": {
            "name": lease_name(ring, identity),
            "namespace": namespace,
            "labels": {RING_LABEL: ring},
        },
        "spec": {
            "holderIdentity": identity,
            # An integer on the wire; rounding up never makes others drop a replica sooner.
            "leaseDurationSeconds": math.ceil(lease_seconds),
            "acquireTime": micro_time(now),
            "renewTime": micro_time(now),
        },
    }


def renewed(
    stored: dict[str, Any], *, identity: str, lease_seconds: float, now: datetime
) -> dict[str, Any]:
    """``stored`` renewed ``now``, keeping its resourceVersion so a concurrent change is a 409.

    A Lease held by someone else (or by nobody) before is acquired anew.
    """
    spec = dict(stored.get("spec") or {})
    if spec.get("holderIdentity") != identity or not spec.get("acquireTime"):
        spec["acquireTime"] = micro_time(now)
    spec |= {
        "holderIdentity": identity,
        "leaseDurationSeconds": math.ceil(lease_seconds),
        "renewTime": micro_time(now),
    }
    return {**stored, "spec": spec}


def holder(lease: dict[str, Any]) -> str:
    """The member a listed Lease stands for ("" when nobody holds it)."""
    return str((lease.get("spec") or {}).get("holderIdentity") or "")


def version(lease: dict[str, Any]) -> str:
    """What changes on every renew: the resourceVersion, and the renewTime as written."""
    meta, spec = lease.get("metadata") or {}, lease.get("spec") or {}
    return f"{meta.get('resourceVersion', '')}/{spec.get('renewTime', '')}"


def duration(lease: dict[str, Any], default: float) -> float:
    """A listed Lease's duration in seconds, ``default`` when it states none."""
    seconds = (lease.get("spec") or {}).get("leaseDurationSeconds")
    return float(seconds) if isinstance(seconds, int | float) and seconds > 0 else default
