"""Per-process memory: what this process knows beyond the stored objects.

The ``Ledger`` serialises steps per object, remembers statuses this process wrote (kopf's body
can lag behind them), its fresh claims, and the claims whose call provably never reached DLI
(bound to the exact stored claim, so void once the stored intent differs). Losing it (a crash)
is always safe: the stored status is the source of truth.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import datetime

from dli_operator.resources.status import DliBatchJobStatus, Submission


@dataclass(frozen=True)
class Claim:
    """A claim this process stored: its token, ``sentAt``, and when (monotonic) it was stored."""

    token: str
    sent_at: datetime | None
    at: float

    def holds(self, submission: Submission | None) -> bool:
        """Whether ``submission`` is exactly the intent this claim was stored with."""
        return (
            submission is not None
            and submission.claim == self.token
            and submission.sent_at == self.sent_at
        )


@dataclass
class Ledger:
    """What this process knows beyond the stored objects; all of it may be lost safely."""

    locks: dict[str, asyncio.Lock] = field(default_factory=dict)
    written: dict[str, tuple[int, DliBatchJobStatus]] = field(default_factory=dict)
    claims: dict[str, Claim] = field(default_factory=dict)
    unsent: dict[str, Claim] = field(default_factory=dict)
    """Claims whose create call provably never reached DLI (refused connection, 4xx)."""
    deleting: set[str] = field(default_factory=set)

    def lock(self, uid: str) -> asyncio.Lock:
        return self.locks.setdefault(uid, asyncio.Lock())

    def forget(self, uid: str) -> None:
        """Drop everything about a job that is final or gone (memory stays per live job)."""
        self.locks.pop(uid, None)
        self.written.pop(uid, None)
        self.claims.pop(uid, None)
        self.unsent.pop(uid, None)
        self.deleting.discard(uid)
