"""Whether this replica is the one doing the work, for the ``dli_operator_leading`` gauge.

kopf peering pauses a replica while a live peer has a higher priority, and pauses every replica
of equal priority (kopf/_core/engines/peering.py, ``process_peering_event``). kopf keeps that
switch to itself, so this module reads the same ClusterKopfPeering object now and then and
applies the same rule. The "operator not leading" alert (docs/observability.md) fires when no
replica leads. Namespaced peering (``--namespace`` without ``--all-namespaces``) is not observed:
the gauge is then left out rather than guessed.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from dli_operator import metrics
from dli_operator.kubeapi import KubeApi, KubeApiError

logger = logging.getLogger(__name__)

# How often the peering object is read: well inside kopf's 60 s peer lifetime.
CHECK_SECONDS = 15.0


def leads(peers: Mapping[str, Any], priority: int, now: datetime) -> bool:
    """kopf's rule: no live peer above ``priority``, and none beside this replica at it."""
    live = [info for info in peers.values() if _alive(info, now)]
    higher = [info for info in live if int(info.get("priority", 0)) > priority]
    same = [info for info in live if int(info.get("priority", 0)) == priority]
    return not higher and len(same) <= 1  # this replica is one of ``same`` once it has a lease


def _alive(info: Mapping[str, Any], now: datetime) -> bool:
    try:
        seen = datetime.fromisoformat(str(info["lastseen"]))
    except (KeyError, ValueError):
        return False
    seen = seen if seen.tzinfo else seen.replace(tzinfo=UTC)
    return seen + timedelta(seconds=int(info.get("lifetime", 60))) > now


async def watch(kube: KubeApi, peering: Any) -> None:
    """Keep the gauge current until cancelled; ``peering`` is kopf's ``settings.peering``."""
    if peering.standalone:
        metrics.LEADING.set(1)
        return
    if not peering.clusterwide:
        return
    while True:
        try:
            metrics.LEADING.set(1 if await _leading(kube, peering) else 0)
        except KubeApiError as exc:
            logger.warning("cannot read peering %s: %s", peering.name, exc)
        await asyncio.sleep(CHECK_SECONDS)


async def _leading(kube: KubeApi, peering: Any) -> bool:
    body = await kube.read_cluster_peering(peering.name)
    if body is None:
        return not peering.mandatory  # kopf pauses when a required peering object is missing
    return leads(body.get("status") or {}, peering.priority, datetime.now(UTC))
