"""kopf peering's rule, as the leading gauge applies it to a ClusterKopfPeering status."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

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
