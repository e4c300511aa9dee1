"""The retry policy: what is retried, for which methods, and how long we wait."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from dli_operator.dli.errors import (
    DliConnectError,
    DliError,
    DliProtocolError,
    DliTimeoutError,
    DliTransportError,
    api_error,
)
from dli_operator.dli.models import ErrorBody
from dli_operator.dli.retries import (
    NO_RETRIES,
    RetryPolicy,
    Verdict,
    is_retryable,
    parse_retry_after,
    verdict,
)

NOW = datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC)


def api(status: int, code: str, retry_after: float | None = None) -> DliError:
    body = ErrorBody(error_code=code, error_msg="m")
    return api_error(status, body, request_id=None, retry_after=retry_after)


@pytest.mark.parametrize(
    ("err", "expected"),
    [
        (api(429, "APIG.0308"), Verdict.RETRY),
        (api(400, "DLI.0999"), Verdict.RETRY),
        (api(500, "500"), Verdict.RETRY),
        (api(502, "502"), Verdict.RETRY),
        (api(503, "SOMETHING.NEW"), Verdict.RETRY),
        (api(599, "599"), Verdict.RETRY),
        (api(501, "501"), Verdict.TERMINAL),
        (api(400, "DLI.0001"), Verdict.TERMINAL),
        (api(400, "DLI.0002"), Verdict.TERMINAL),
        (api(401, "APIG.0301"), Verdict.TERMINAL),
        (api(404, "APIG.0101"), Verdict.TERMINAL),
        (api(400, "DLI.1028"), Verdict.TERMINAL),
        (api(418, "418"), Verdict.TERMINAL),
        (DliConnectError("refused"), Verdict.RETRY),
        (DliTimeoutError("read timeout"), Verdict.RETRY),
        (DliTransportError("reset"), Verdict.RETRY),
        (DliProtocolError("html 200"), Verdict.RETRY),
        (DliError("something else"), Verdict.TERMINAL),
    ],
)
def test_each_error_gets_its_verdict_from_the_table(err: DliError, expected: Verdict) -> None:
    assert verdict(err) is expected


@pytest.mark.parametrize(
    "err",
    [DliTimeoutError("read timeout"), DliTransportError("reset"), api(503, "503"), api(429, "x")],
)
def test_a_create_post_is_not_retried_once_it_may_have_reached_dli(err: DliError) -> None:
    assert is_retryable(err, idempotent=True)
    assert not is_retryable(err, idempotent=False)


def test_a_create_post_is_retried_when_it_never_left() -> None:
    assert is_retryable(DliConnectError("connection refused"), idempotent=False)


def test_backoff_grows_exponentially_and_is_capped() -> None:
    policy = RetryPolicy(base_delay_seconds=1.0, max_delay_seconds=5.0)
    assert [policy.backoff(n, lambda: 1.0) for n in range(1, 6)] == [1.0, 2.0, 4.0, 5.0, 5.0]


def test_backoff_is_fully_jittered() -> None:
    policy = RetryPolicy(base_delay_seconds=2.0)
    assert policy.backoff(2, lambda: 0.25) == 1.0
    assert policy.backoff(2, lambda: 0.0) == 0.0


def test_no_retry_after_the_last_attempt() -> None:
    policy = RetryPolicy(max_attempts=3)
    err = api(503, "503")
    assert policy.next_delay(2, err, idempotent=True, elapsed_seconds=0, rand=lambda: 0.5)
    assert policy.next_delay(3, err, idempotent=True, elapsed_seconds=0) is None
    assert NO_RETRIES.next_delay(1, err, idempotent=True, elapsed_seconds=0) is None


def test_no_retry_that_would_start_after_the_total_time_budget() -> None:
    policy = RetryPolicy(base_delay_seconds=4.0, total_seconds=10.0)
    err = api(503, "503")
    assert policy.next_delay(1, err, idempotent=True, elapsed_seconds=5.0, rand=lambda: 1.0) == 4.0
    assert policy.next_delay(1, err, idempotent=True, elapsed_seconds=7.0, rand=lambda: 1.0) is None


def test_retry_after_is_honoured_even_above_the_backoff() -> None:
    policy = RetryPolicy(base_delay_seconds=0.1, max_delay_seconds=1.0)
    err = api(429, "APIG.0308", retry_after=7.0)
    assert policy.next_delay(1, err, idempotent=True, elapsed_seconds=0, rand=lambda: 1.0) == 7.0


def test_a_retry_after_beyond_the_limit_goes_back_to_the_caller() -> None:
    policy = RetryPolicy(honour_retry_after_up_to_seconds=30.0, total_seconds=1000.0)
    err = api(429, "APIG.0308", retry_after=31.0)
    assert policy.next_delay(1, err, idempotent=True, elapsed_seconds=0) is None


def test_terminal_errors_are_never_retried() -> None:
    policy = RetryPolicy()
    err = api(400, "DLI.0001")
    assert policy.next_delay(1, err, idempotent=True, elapsed_seconds=0) is None


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        ("3", 3.0),
        (" 2.5 ", 2.5),
        ("-4", 0.0),
        ("Thu, 02 Jan 2025 03:04:35 GMT", 30.0),
        ("Thu, 02 Jan 2025 03:00:00 GMT", 0.0),
        ("soon", None),
        ("", None),
        (None, None),
    ],
)
def test_retry_after_is_read_as_seconds_or_an_http_date(
    value: str | None, seconds: float | None
) -> None:
    assert parse_retry_after(value, NOW) == seconds
