"""IAM password login: project-scoped token, cached, renewed before expiry and once on 401."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from dli_operator.dli.auth import PasswordLogin, TokenAuth
from dli_operator.dli.client import DliClient
from dli_operator.dli.errors import DliAuthError
from dli_operator.dli.retries import NO_RETRIES

PID = "0123456789abcdef0123456789abcdef"
BATCH = "0a324461-d9d9-45da-a52a-3b3c7a3d809e"
IAM = "https://iam.cn-north-4.myhuaweicloud.com"
T0 = datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC)
LOGIN = PasswordLogin(IAM, domain_name="acct", username="bob", password="s3cret", project_id=PID)


class FakeCloud:
    """IAM hands out tok-1, tok-2...; DLI accepts only tokens not revoked."""

    def __init__(self, iam_status: int = 201) -> None:
        self.logins: list[dict[str, object]] = []
        self.revoked: set[str] = set()
        self.seen_tokens: list[str] = []
        self.iam_status = iam_status

    def __call__(self, request: httpx.Request) -> httpx.Response:
        if request.url.host == "iam.cn-north-4.myhuaweicloud.com":
            return self.login(request)
        token = request.headers.get("X-Auth-Token", "")
        self.seen_tokens.append(token)
        if token in self.revoked or not token:
            body = {"error_code": "APIG.0301", "error_msg": "token expires"}
            return httpx.Response(401, json=body)
        return httpx.Response(200, json={"id": BATCH, "state": "running"})

    def login(self, request: httpx.Request) -> httpx.Response:
        assert request.url.path == "/v3/auth/tokens"
        self.logins.append(json.loads(request.content))
        if self.iam_status != 201:
            error = {"code": self.iam_status, "message": "bad password", "title": "Unauthorized"}
            return httpx.Response(self.iam_status, json={"error": error})
        expires = (T0 + timedelta(hours=24)).isoformat().replace("+00:00", "Z")
        token = f"tok-{len(self.logins)}"
        return httpx.Response(
            201, json={"token": {"expires_at": expires}}, headers={"X-Subject-Token": token}
        )


def client_for(cloud: FakeCloud, clock: Callable[[], datetime]) -> DliClient:
    auth = TokenAuth(LOGIN, clock=clock, refresh_before_seconds=3600)
    return DliClient(
        project_id=PID, auth=auth, region="cn-north-4", transport=httpx.MockTransport(cloud),
        retry_policy=NO_RETRIES,
    )  # fmt: skip


async def test_the_login_asks_iam_for_a_project_scoped_token() -> None:
    cloud = FakeCloud()
    async with client_for(cloud, lambda: T0) as client:
        await client.get_batch_state(BATCH)
    identity = cloud.logins[0]["auth"]
    assert identity == {  # type: ignore[comparison-overlap]
        "identity": {"methods": ["password"], "password": {"user": {
            "name": "bob", "password": "s3cret", "domain": {"name": "acct"}}}},
        "scope": {"project": {"id": PID}},
    }  # fmt: skip
    assert cloud.seen_tokens == ["tok-1"]


async def test_the_token_is_cached_across_calls() -> None:
    cloud = FakeCloud()
    async with client_for(cloud, lambda: T0) as client:
        for _ in range(3):
            await client.get_batch_state(BATCH)
    assert len(cloud.logins) == 1
    assert cloud.seen_tokens == ["tok-1"] * 3


async def test_the_token_is_renewed_before_it_expires() -> None:
    cloud = FakeCloud()
    now = [T0]
    async with client_for(cloud, lambda: now[0]) as client:
        await client.get_batch_state(BATCH)
        now[0] = T0 + timedelta(hours=22, minutes=59)
        await client.get_batch_state(BATCH)
        now[0] = T0 + timedelta(hours=23, minutes=1)
        await client.get_batch_state(BATCH)
    assert cloud.seen_tokens == ["tok-1", "tok-1", "tok-2"]


async def test_a_revoked_token_is_renewed_once_on_401_and_the_call_succeeds() -> None:
    cloud = FakeCloud()
    async with client_for(cloud, lambda: T0) as client:
        await client.get_batch_state(BATCH)
        cloud.revoked.add("tok-1")
        state = await client.get_batch_state(BATCH)
    assert state.id == BATCH
    assert cloud.seen_tokens == ["tok-1", "tok-1", "tok-2"]


async def test_a_second_401_after_renewal_is_raised_not_looped() -> None:
    cloud = FakeCloud()
    cloud.revoked.update({"tok-1", "tok-2", "tok-3"})
    async with client_for(cloud, lambda: T0) as client:
        with pytest.raises(DliAuthError, match=r"APIG\.0301"):
            await client.get_batch_state(BATCH)
    assert len(cloud.logins) == 2


async def test_a_failed_login_is_an_auth_error_naming_iam() -> None:
    cloud = FakeCloud(iam_status=401)
    async with client_for(cloud, lambda: T0) as client:
        with pytest.raises(DliAuthError, match="iam_login: HTTP 401 401: bad password"):
            await client.get_batch_state(BATCH)


def test_the_password_never_shows_in_a_repr() -> None:
    assert "s3cret" not in repr(LOGIN)


def test_a_token_must_be_project_scoped() -> None:
    with pytest.raises(ValueError, match="project-scoped"):
        TokenAuth(PasswordLogin(IAM, domain_name="a", username="u", password="p"))
