"""kopf peering's rule, as the leading gauge applies it to a ClusterKopfPeering status."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from prometheus_client import REGISTRY

from dli_operator import leadership, metrics
from dli_operator.kubeapi import KubeApi
from dli_operator.leadership import leads

NOW = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


def peer(priority: int, seen_seconds_ago: float = 5) -> dict[str, object]:
    seen = NOW - timedelta(seconds=seen_seconds_ago)
    return {"priority": priority, "lifetime": 60, "lastseen": seen.isoformat()}


@pytest.mark.parametrize(
    ("peers", "expected"),
    [
        ({}, True),  # before this replica's first keep-alive
        ({"me": peer(100)}, True),
        ({"me": peer(100), "standby": peer(50)}, True),
        ({"me": peer(100), "other": peer(200)}, False),  # a higher peer runs, this one pauses
        ({"me": peer(100), "twin": peer(100)}, False),  # kopf pauses both of equal priority
        ({"me": peer(100), "gone": peer(200, seen_seconds_ago=61)}, True),  # dead peers count not
        ({"me": peer(100), "odd": {"priority": 200}}, True),  # no lastseen: not alive
    ],
)
def test_a_replica_leads_unless_a_live_peer_outranks_or_ties_it(
    peers: dict[str, dict[str, object]], expected: bool
) -> None:
    assert leads(peers, 100, NOW) is expected


class Peering:
    """kopf's settings.peering, as far as the watcher reads it."""

    def __init__(self, *, standalone: bool = False, clusterwide: bool = True) -> None:
        self.name, self.priority, self.mandatory = "dli-operator", 100, True
        self.standalone, self.clusterwide = standalone, clusterwide


class PeeringApi(KubeApi):
    def __init__(self, body: dict[str, Any] | None) -> None:
        self.body = body
        self.asked: list[str] = []

    async def read_cluster_peering(self, name: str) -> dict[str, Any] | None:
        self.asked.append(name)
        return self.body


async def test_the_watcher_reads_the_operators_peering_object() -> None:
    now = datetime.now(UTC)
    seen = {"priority": 200, "lifetime": 60, "lastseen": now.isoformat()}
    api = PeeringApi({"status": {"me": peer(100), "other": seen}})
    assert await leadership._leading(api, Peering()) is False
    assert api.asked == ["dli-operator"]
    assert await leadership._leading(PeeringApi(None), Peering()) is False  # mandatory, missing


async def test_a_standalone_replica_always_leads() -> None:
    metrics.LEADING.set(0)
    await leadership.watch(PeeringApi(None), Peering(standalone=True))
    assert REGISTRY.get_sample_value("dli_operator_leading") == 1.0
