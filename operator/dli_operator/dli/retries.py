"""When the DLI client retries a request, and how long it waits: pure policy, no I/O.

Retries here are for one request; kopf retries the reconcile. A GET or DELETE can be
repeated safely, so it is retried on transport errors, throttling and server errors.
The create POST is not idempotent and DLI offers no idempotency token (dli_02_0124), so
it is retried only when the request provably never reached the server
(``DliConnectError``); anything else goes back to the caller, who looks the job up
before submitting again (DESIGN.md, "Submit exactly once per attempt").

Which errors are worth retrying is the one table ``VERDICTS`` below.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from enum import StrEnum

from dli_operator.dli.errors import (
    DliApiError,
    DliConnectError,
    DliError,
    DliProtocolError,
    DliTransportError,
)


class Verdict(StrEnum):
    RETRY = "retry"
    TERMINAL = "terminal"


# Error code (str) or HTTP status (int) -> verdict. Codes win over statuses; a status not
# listed is retryable if >= 500 and terminal otherwise. Sources: dli_02_0056, APIG pages
# (dli-api.md §3).
VERDICTS: Mapping[str | int, Verdict] = {
    # Throttling; Huawei's advice is to retry after 2-5 s.
    "APIG.0308": Verdict.RETRY,
    "APIGW.0308": Verdict.RETRY,
    # "Server-side error", sent with HTTP 400.
    "DLI.0999": Verdict.RETRY,
    # A bad signature or token does not get better by resending it unchanged;
    # TokenAuth already re-logs in once on a 401.
    "APIG.0301": Verdict.TERMINAL,
    "APIGW.0301": Verdict.TERMINAL,
    "APIG.0101": Verdict.TERMINAL,
    "DLI.0001": Verdict.TERMINAL,  # parameter check error
    "DLI.0002": Verdict.TERMINAL,  # object does not exist (a missing queue, an unknown batch)
    "DLI.0006": Verdict.TERMINAL,  # object exists
    "DLI.0007": Verdict.TERMINAL,  # operation not supported
    "DLI.0009": Verdict.TERMINAL,  # system restrictions
    "DLI.0011": Verdict.TERMINAL,  # file permission check failed
    "DLI.0013": Verdict.TERMINAL,  # user authentication error
    "DLI.0014": Verdict.TERMINAL,  # service authentication error
    "DLI.0023": Verdict.TERMINAL,  # no related resources found
    "DLI.1028": Verdict.TERMINAL,  # quota insufficient
    408: Verdict.RETRY,
    429: Verdict.RETRY,
    500: Verdict.RETRY,
    501: Verdict.TERMINAL,
    502: Verdict.RETRY,
    503: Verdict.RETRY,
    504: Verdict.RETRY,
}


def verdict(err: DliError) -> Verdict:
    """Whether an error is worth retrying at all, ignoring the method."""
    if isinstance(err, DliApiError):
        by_code = VERDICTS.get(err.error_code)
        if by_code is not None:
            return by_code
        by_status = VERDICTS.get(err.status)
        if by_status is not None:
            return by_status
        return Verdict.RETRY if err.status >= 500 else Verdict.TERMINAL
    if isinstance(err, DliTransportError | DliProtocolError):
        return Verdict.RETRY
    return Verdict.TERMINAL


def is_retryable(err: DliError, *, idempotent: bool) -> bool:
    """Whether to resend: non-idempotent requests only if they never left."""
    if not idempotent:
        return isinstance(err, DliConnectError)
    return verdict(err) is Verdict.RETRY


def parse_retry_after(value: str | None, now: datetime) -> float | None:
    """``Retry-After`` as seconds from ``now``: delta-seconds or an HTTP date (RFC 9110)."""
    if not value:
        return None
    text = value.strip()
    try:
        return max(0.0, float(text))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - now).total_seconds())


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff with full jitter, bounded by attempts and by total time."""

    max_attempts: int = 5
    """Attempts in all, the first one included; 1 disables retries."""
    base_delay_seconds: float = 0.5
    """The cap of the first backoff; it doubles with each attempt."""
    max_delay_seconds: float = 30.0
    """No single backoff (jittered or not) is longer than this."""
    total_seconds: float = 120.0
    """No retry is started if it would begin after this long since the first attempt."""
    honour_retry_after_up_to_seconds: float = 120.0
    """A ``Retry-After`` longer than this is not waited for: the error goes to the caller."""

    def backoff(self, attempt: int, rand: Callable[[], float] = random.random) -> float:
        """The jittered delay after the ``attempt``-th failure (1-based)."""
        cap = min(self.max_delay_seconds, self.base_delay_seconds * 2.0 ** (attempt - 1))
        return cap * rand()

    def next_delay(
        self,
        attempt: int,
        err: DliError,
        *,
        idempotent: bool,
        elapsed_seconds: float,
        rand: Callable[[], float] = random.random,
    ) -> float | None:
        """Seconds to wait before the next attempt, or ``None`` to give up and raise ``err``."""
        if attempt >= self.max_attempts or not is_retryable(err, idempotent=idempotent):
            return None
        delay = self.backoff(attempt, rand)
        retry_after = err.retry_after if isinstance(err, DliApiError) else None
        if retry_after is not None:
            if retry_after > self.honour_retry_after_up_to_seconds:
                return None
            delay = max(delay, retry_after)
        if elapsed_seconds + delay > self.total_seconds:
            return None
        return delay


NO_RETRIES = RetryPolicy(max_attempts=1)
