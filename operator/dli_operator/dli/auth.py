"""The two ways to authenticate to DLI, as ``httpx.Auth`` flows.

``AkSkAuth`` signs each request with ``signing.py`` (SDK-HMAC-SHA256, dli-api.md §4.2),
for permanent and temporary (STS) credentials alike; Huawei recommends AK/SK.
``TokenAuth`` logs in to IAM with a password for a project-scoped token (IAM
iam_30_0001), caches it, renews it before it expires and once more on a 401, since
IAM can revoke tokens early (a password change, a permission change).

The IAM login goes through the same ``httpx.AsyncClient`` as the DLI calls (it is
yielded from the auth flow), so it shares the pool, the timeouts and the test transport.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncGenerator, Callable, Generator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import httpx

from dli_operator.dli.errors import DliProtocolError, api_error, parse_error_body
from dli_operator.dli.signing import sign_request

# Sent by DLI's and IAM's callers; only these are signed, because proxies may rewrite
# the rest (Connection, Accept-Encoding, User-Agent).
SIGNED_HEADERS = ("host", "content-type", "x-project-id", "x-security-token")
# IAM tokens last 24 h (iam_30_0001); renew an hour early.
DEFAULT_REFRESH_BEFORE_SECONDS = 3600.0
TOKEN_LIFETIME_IF_UNSTATED = timedelta(hours=23)


def _utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class Credentials:
    """An access key pair, with the security token if it is temporary (STS/agency)."""

    access_key: str
    secret_key: str = field(repr=False)
    security_token: str | None = field(default=None, repr=False)


class AkSkAuth(httpx.Auth):
    """Sign every request the way ``huaweicloudsdkcore``'s ``Signer`` does.

    ``credentials`` may be a callable, asked once per request, so that rotated or
    refreshed temporary credentials are picked up without a new client.
    """

    requires_request_body = True

    def __init__(
        self,
        credentials: Credentials | Callable[[], Credentials],
        *,
        clock: Callable[[], datetime] = _utcnow,
    ) -> None:
        self._credentials = credentials
        self._clock = clock

    def _current(self) -> Credentials:
        creds = self._credentials
        return creds if isinstance(creds, Credentials) else creds()

    def secrets(self) -> tuple[str | None, ...]:
        """The values never to show (masked in error messages)."""
        try:
            creds = self._current()
        except LookupError:
            return ()
        return (creds.access_key, creds.secret_key, creds.security_token)

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        creds = self._current()
        if creds.security_token:
            request.headers["X-Security-Token"] = creds.security_token
        to_sign = {
            name: request.headers[name] for name in SIGNED_HEADERS if name in request.headers
        }
        added = sign_request(
            request.method,
            sent_url(request),
            to_sign,
            request.content,
            access_key=creds.access_key,
            secret_key=creds.secret_key,
            now=self._clock(),
        )
        request.headers.update(added)
        yield request


def secret_values(auth: httpx.Auth | None) -> tuple[str | None, ...]:
    """What ``auth`` holds that must never be shown; empty for an auth that says nothing."""
    return auth.secrets() if isinstance(auth, AkSkAuth | TokenAuth) else ()


def sent_url(request: httpx.Request) -> str:
    """The URL with the path and query exactly as they go on the wire."""
    url = request.url
    return f"{url.scheme}://{url.netloc.decode('ascii')}{url.raw_path.decode('ascii')}"


@dataclass(frozen=True)
class PasswordLogin:
    """What IAM needs for a project-scoped token (iam_30_0001)."""

    iam_endpoint: str
    """For example ``https://iam.cn-north-4.myhuaweicloud.com``."""
    domain_name: str
    """The account name that owns the IAM user."""
    username: str
    password: str = field(repr=False)
    project_id: str | None = None
    project_name: str | None = None
    """Usually the region id; used when ``project_id`` is not given."""

    def body(self) -> bytes:
        project = {"id": self.project_id} if self.project_id else {"name": self.project_name}
        user = {
            "name": self.username,
            "password": self.password,
            "domain": {"name": self.domain_name},
        }
        auth = {"identity": {"methods": ["password"], "password": {"user": user}}}
        return json.dumps({"auth": {**auth, "scope": {"project": project}}}).encode("utf-8")


@dataclass(frozen=True)
class _Token:
    value: str = field(repr=False)
    expires_at: datetime


class TokenAuth(httpx.Auth):
    """``X-Auth-Token`` from an IAM password login, cached and renewed."""

    def __init__(
        self,
        login: PasswordLogin,
        *,
        refresh_before_seconds: float = DEFAULT_REFRESH_BEFORE_SECONDS,
        clock: Callable[[], datetime] = _utcnow,
    ) -> None:
        if not (login.project_id or login.project_name):
            raise ValueError("an IAM token for DLI must be project-scoped: give project_id or name")
        self._login = login
        self._refresh_before = timedelta(seconds=refresh_before_seconds)
        self._clock = clock
        self._token: _Token | None = None
        self._lock = asyncio.Lock()

    def secrets(self) -> tuple[str | None, ...]:
        """The values never to show (masked in error messages)."""
        return (self._login.password, self._token.value if self._token else None)

    def sync_auth_flow(
        self, request: httpx.Request
    ) -> Generator[httpx.Request, httpx.Response, None]:
        raise NotImplementedError("TokenAuth is for httpx.AsyncClient only")

    def _fresh(self) -> _Token | None:
        token = self._token
        if token is None or self._clock() >= token.expires_at - self._refresh_before:
            return None
        return token

    async def async_auth_flow(
        self, request: httpx.Request
    ) -> AsyncGenerator[httpx.Request, httpx.Response]:
        token = self._fresh()
        if token is None:
            async with self._lock:
                token = self._fresh()
                if token is None:
                    login = yield self._login_request()
                    token = await self._accept(login)
        request.headers["X-Auth-Token"] = token.value
        response = yield request
        if response.status_code != httpx.codes.UNAUTHORIZED:
            return
        # Revoked early, or our clock is off: log in again, once, and resend.
        async with self._lock:
            if self._token is token:
                self._token = None
                login = yield self._login_request()
                token = await self._accept(login)
            elif self._token is not None:
                token = self._token
        request.headers["X-Auth-Token"] = token.value
        yield request

    def _login_request(self) -> httpx.Request:
        return httpx.Request(
            "POST",
            f"{self._login.iam_endpoint.rstrip('/')}/v3/auth/tokens",
            params={"nocatalog": "true"},
            headers={"Content-Type": "application/json;charset=utf8"},
            content=self._login.body(),
        )

    async def _accept(self, response: httpx.Response) -> _Token:
        # IAM answers 201 with the token in a header and its expiry in the body.
        await response.aread()
        if response.status_code != httpx.codes.CREATED:
            body = parse_error_body(response.status_code, response.content, _ctype(response))
            rid = response.headers.get("X-Request-Id")
            raise api_error(response.status_code, body, request_id=rid, operation="iam_login")
        value = response.headers.get("X-Subject-Token")
        if not value:
            raise DliProtocolError("IAM login returned no X-Subject-Token", operation="iam_login")
        self._token = _Token(value, self._expiry(response))
        return self._token

    def _expiry(self, response: httpx.Response) -> datetime:
        try:
            text = response.json()["token"]["expires_at"]
            return datetime.fromisoformat(text).astimezone(UTC)
        except (ValueError, KeyError, TypeError):
            return self._clock() + TOKEN_LIFETIME_IF_UNSTATED


def _ctype(response: httpx.Response) -> str:
    return str(response.headers.get("Content-Type", ""))
