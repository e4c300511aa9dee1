"""Consistent hashing with virtual nodes: the replica that owns a job key (pure, no I/O).

Each member is placed on a 64-bit ring at ``vnodes`` points (blake2b of ``member#i``); a key
(``namespace/name``) belongs to the first point at or after its own hash, wrapping around. So
adding a member moves only the keys that fall just before its points, about 1/N of them and all
to the new member, and removing one moves only its own keys (Karger et al. 1997; the scheme of
timebertt/kubernetes-controller-sharding). The hash is blake2b, not ``hash()``: Python salts
``hash()`` per process, and every replica must compute the same owner.
"""

from __future__ import annotations

import bisect
import hashlib
from collections.abc import Iterable

VNODES = 64
"""Points per member. A member's share deviates from 1/N by about 1/sqrt(VNODES), ~12% at 64:
the StatefulSet's three pods ``dli-operator-0..2`` are within 11% (tests/unit/test_shard_ring.py).
More points even the shares out at the cost of a larger table (timebertt's sharder uses 100)."""


def point(text: str) -> int:
    """A stable 64-bit position on the ring, the same in every process and on every machine."""
    return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "big")


class Ring:
    """An immutable assignment of keys to members; build a new one when the members change."""

    def __init__(self, members: Iterable[str], *, vnodes: int = VNODES) -> None:
        if vnodes < 1:
            raise ValueError(f"vnodes must be at least 1, not {vnodes}")
        self._members = tuple(sorted(set(members)))
        # Ties (two points at one position, ~never) go to the smaller member id, in every process.
        placed = sorted((point(f"{m}#{i}"), m) for m in self._members for i in range(vnodes))
        self._points = [p for p, _ in placed]
        self._owners = [m for _, m in placed]

    @property
    def members(self) -> tuple[str, ...]:
        """The members, sorted."""
        return self._members

    def owner(self, key: str) -> str | None:
        """The member owning ``key`` (``namespace/name``), or None when the ring is empty."""
        if not self._points:
            return None
        index = bisect.bisect_left(self._points, point(key))
        return self._owners[index % len(self._owners)]

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Ring) and (self._points, self._owners) == (
            other._points,
            other._owners,
        )

    def __hash__(self) -> int:
        return hash(self._members)

    def __repr__(self) -> str:
        return f"Ring({list(self._members)!r})"
