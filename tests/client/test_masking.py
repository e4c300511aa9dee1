"""Credential values never leave the client inside an error message (issue 11)."""

from __future__ import annotations

import logging
from datetime import UTC, datetime

import httpx
import pytest

from dli_operator.dli.auth import AkSkAuth, Credentials
from dli_operator.dli.client import DliClient
from dli_operator.dli.errors import DliAuthError, DliServerError
from dli_operator.dli.retries import RetryPolicy

AK = "HPUAEXAMPLEAK0000001"
SK = "exampleSecretKey0123456789abcdefghijklmn"
TOKEN = "gQpjbi1ub3J0aC00TEMPORARYTOKEN"
OTHER_AK = "ZZZZEXAMPLEAK0000009"  # an AK of someone else's, shaped like one
NOW = datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC)


def client(reply: httpx.Response, **kwargs: object) -> DliClient:
    return DliClient(
        project_id="0123456789abcdef0123456789abcdef",
        region="cn-north-4",
        auth=AkSkAuth(Credentials(AK, SK, TOKEN), clock=lambda: NOW),
        transport=httpx.MockTransport(lambda request: reply),
        **kwargs,  # type: ignore[arg-type]
    )


@pytest.mark.parametrize("echoed", [AK, SK, TOKEN, OTHER_AK])
async def test_a_credential_echoed_by_the_gateway_is_masked(echoed: str) -> None:
    body = {"error_code": "APIG.0301", "error_msg": f"Incorrect IAM authentication: {echoed}!"}
    async with client(httpx.Response(401, json=body)) as dli:
        with pytest.raises(DliAuthError) as caught:
            await dli.list_batches()
    error = caught.value
    for text in (str(error), error.message, error.error_msg, repr(error)):
        assert echoed not in text
        assert "***" in text
    assert error.error_code == "APIG.0301"


async def test_a_retried_error_is_masked_before_it_is_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    body = {"error_code": "DLI.0999", "error_msg": f"server error for {AK}"}

    async def no_sleep(_: float) -> None:
        return None

    policy = RetryPolicy(max_attempts=2, base_delay_seconds=0.0)
    caplog.set_level(logging.WARNING)
    async with client(httpx.Response(500, json=body), retry_policy=policy, sleep=no_sleep) as dli:
        with pytest.raises(DliServerError):
            await dli.get_batch("0a324461-d9d9-45da-a52a-3b3c7a3d809e")
    assert "will retry" in caplog.text
    assert AK not in caplog.text
