"""The API gateway in front of DLI: authentication, request ids, and dropped connections.

Every Huawei Cloud API sits behind APIG, which checks AK/SK signatures (with the same signer the
client uses, ``dli.signing``, so a signing bug fails here and not in production) or an
``X-Auth-Token``, answers 401 ``APIG.0301`` otherwise, 404 ``APIG.0101`` for an unknown API, and
tags every reply with ``X-Request-Id`` (dli-api.md sections 3 and 4).
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import UTC, datetime

from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from dli_operator.dli.signing import SignatureError, verify_request
from dli_operator.emulator.config import EmulatorConfig
from dli_operator.emulator.iam import Identity, TemporaryKey
from dli_operator.emulator.replies import AUTH_FAILED, ApiError

REQUEST_ID = "dli_emulator.request_id"  # scope key: the id of the request being served


def unauthorized(detail: str) -> ApiError:
    return ApiError(401, "APIG.0301", AUTH_FAILED.format(detail=detail))


def authenticate(
    request: Request,
    body: bytes,
    config: EmulatorConfig,
    now: float,
    project_id: str,
    identity: Identity | None = None,
) -> None:
    """Accept a request signed with the configured AK/SK, or with temporary keys IAM issued and
    their security token, or carrying a configured token."""
    headers = request.headers
    if project_id != config.project_id:
        raise unauthorized(f"project {project_id} does not match the credentials")
    header_project = headers.get("x-project-id")
    if header_project is not None and header_project != config.project_id:
        raise unauthorized(f"X-Project-Id {header_project} does not match the credentials")
    token = headers.get("x-auth-token")
    if token is not None:
        if token not in config.tokens:
            raise unauthorized("decrypt token fail")
        return
    if "authorization" not in headers:
        raise unauthorized("x-auth-token not found")
    keys = {config.access_key: config.secret_key}
    if identity is not None:
        keys.update({ak: key.secret_key for ak, key in identity.temporary.items()})
    access_key = _verify_signature(request, body, keys, now)
    temporary = identity.key(access_key) if identity is not None else None
    if temporary is not None:
        _check_temporary(temporary, headers.get("x-security-token"), now)


def _check_temporary(key: TemporaryKey, token: str | None, now: float) -> None:
    """Temporary keys go with their security token, and only until they expire (iam_04_0002)."""
    if token != key.security_token:
        raise unauthorized("the security token does not belong to this access key")
    if now >= key.expires:
        stamp = datetime.fromtimestamp(key.expires, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        raise unauthorized(f"token expires, expires_at: {stamp}")


def _verify_signature(request: Request, body: bytes, secrets: Mapping[str, str], now: float) -> str:
    try:
        return verify_request(
            request.method,
            str(request.url),
            dict(request.headers),
            body,
            secrets=secrets,
            now=datetime.fromtimestamp(now, tz=UTC),
        )
    except SignatureError as error:
        raise unauthorized(f"verify aksk signature fail, {error}") from None


def request_id(request: Request) -> str:
    return str(request.scope.get(REQUEST_ID, ""))


class RequestIdMiddleware:
    """Give every request an id and every reply an ``X-Request-Id`` header, errors included."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        rid = uuid.uuid4().hex
        scope[REQUEST_ID] = rid

        async def tagged(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), (b"x-request-id", rid.encode())]
            await send(message)

        await self.app(scope, receive, tagged)


class ConnectionDropped(Exception):
    """Raised after the status line went out, so the server cuts the connection mid-reply."""


class DropConnection(Response):
    """A reply that never finishes: the client sees the connection close under it."""

    def __init__(self) -> None:
        super().__init__(status_code=200)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"application/json"), (b"content-length", b"4096")],
            }
        )
        raise ConnectionDropped("connection dropped by an emulator fault")
