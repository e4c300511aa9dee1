"""IAM and the ECS metadata service, as far as the operator's identities need them (issue 11).

- ``POST /v3.0/OS-AUTH/id-token/tokens`` (iam_13_0605): an OpenID Connect ID token, with the
  identity provider in ``X-Idp-Id``, for a federated token (``201``, ``X-Subject-Token``).
- ``POST /v3.0/OS-CREDENTIAL/securitytokens`` (iam_04_0002): a token, in ``X-Auth-Token`` or the
  body, for temporary AK/SK and a security token valid ``duration_seconds``.
- ``GET /openstack/latest/securitykey`` and ``PUT /meta-data/latest/api/token``: the node's
  agency keys from the metadata service, as the SDK's ``MetadataAccessor`` reads them.

Temporary keys are accepted by the gateway (``gateway.authenticate``) until they expire, together
with their security token only. How long they live is set through the control API
(``POST /_emulator/iam``), so a test can watch the operator renew them mid-job. Errors use IAM's
nested shape ``{"error": {"code", "title", "message"}}``; a bad ID token is ``401`` with the reason.
"""

from __future__ import annotations

import json
import secrets
import string
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from dli_operator.emulator import idtoken
from dli_operator.emulator.clock import Clock
from dli_operator.emulator.replies import json_response

# IAM: temporary keys last 900 s to 24 h (iam_04_0002); federated tokens 24 h.
MIN_DURATION, MAX_DURATION = 900, 86400
FEDERATED_TOKEN_SECONDS = 86400
# Expired keys are remembered this long, so the gateway can say "token expires" rather than
# "unknown access key"; then forgotten, so a long run does not grow without bound.
FORGET_AFTER_SECONDS = 3600.0
# Temporary AKs look like permanent ones: 20 upper-case letters and digits.
AK_ALPHABET = string.ascii_uppercase + string.digits


@dataclass(frozen=True)
class TemporaryKey:
    secret_key: str = field(repr=False)
    security_token: str = field(repr=False)
    expires: float


@dataclass
class IdentityProvider:
    """An OpenID Connect identity provider IAM trusts: its signing keys and audiences."""

    jwks: dict[str, Any]
    audiences: tuple[str, ...] = ()


class IamError(Exception):
    def __init__(self, status: int, title: str, message: str) -> None:
        super().__init__(message)
        self.status, self.title, self.message = status, title, message

    def response(self) -> Response:
        body = {"error": {"code": self.status, "title": self.title, "message": self.message}}
        return json_response(body, status=self.status)


class Identity:
    """What IAM and the metadata service hold: providers, tokens, temporary keys."""

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self.providers: dict[str, IdentityProvider] = {}
        self.federated: dict[str, float] = {}
        self.temporary: dict[str, TemporaryKey] = {}
        self.credential_seconds: float | None = None
        """Overrides every lifetime asked for (tests make keys expire in seconds)."""
        self.issued: Counter[str] = Counter()

    def reset(self) -> None:
        self.providers.clear()
        self.federated.clear()
        self.temporary.clear()
        self.credential_seconds = None
        self.issued.clear()

    def key(self, access_key: str) -> TemporaryKey | None:
        return self.temporary.get(access_key)

    def exchange_id_token(self, idp_id: str, body: Any) -> tuple[str, float]:
        provider = self.providers.get(idp_id)
        if provider is None:
            raise IamError(404, "Not Found", f"identity provider {idp_id!r} does not exist")
        id_token = _dig(body, "auth", "id_token", "id")
        if not isinstance(id_token, str):
            raise IamError(400, "Bad Request", "auth.id_token.id is required")
        try:
            idtoken.verify(id_token, provider.jwks, provider.audiences, self.clock())
        except idtoken.InvalidIdToken as exc:
            raise IamError(401, "Unauthorized", str(exc)) from None
        token = "MIIF" + secrets.token_urlsafe(48)
        expires = self.clock() + FEDERATED_TOKEN_SECONDS
        self.federated[token] = expires
        self.issued["id_token"] += 1
        return token, expires

    def security_token(self, header_token: str | None, body: Any) -> dict[str, Any]:
        token = _dig(body, "auth", "identity", "token", "id") or header_token
        if not isinstance(token, str) or self.federated.get(token, 0.0) <= self.clock():
            raise IamError(
                401, "Unauthorized", "The request you have made requires authentication."
            )
        asked = _dig(body, "auth", "identity", "token", "duration_seconds") or MIN_DURATION
        try:
            seconds = float(asked)
        except (TypeError, ValueError):
            raise IamError(400, "Bad Request", "duration_seconds must be a number") from None
        if not MIN_DURATION <= seconds <= MAX_DURATION:
            raise IamError(400, "Bad Request", "duration_seconds must be 900 to 86400")
        self.issued["securitytoken"] += 1
        return self._temporary(seconds)

    def metadata_key(self) -> dict[str, Any]:
        self.issued["metadata"] += 1
        return self._temporary(MIN_DURATION)

    def _forget_expired(self) -> None:
        horizon = self.clock() - FORGET_AFTER_SECONDS
        self.temporary = {ak: k for ak, k in self.temporary.items() if k.expires > horizon}
        self.federated = {t: expires for t, expires in self.federated.items() if expires > horizon}

    def _temporary(self, seconds: float) -> dict[str, Any]:
        self._forget_expired()
        lifetime = self.credential_seconds if self.credential_seconds is not None else seconds
        access = "".join(secrets.choice(AK_ALPHABET) for _ in range(20))
        key = TemporaryKey(
            secrets.token_urlsafe(30), "gQ" + secrets.token_urlsafe(90), self.clock() + lifetime
        )
        self.temporary[access] = key
        stamp = datetime.fromtimestamp(key.expires, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        return {
            "credential": {
                "access": access,
                "secret": key.secret_key,
                "securitytoken": key.security_token,
                "expires_at": stamp,
            }
        }

    def configure(self, spec: dict[str, Any]) -> None:
        """``{"idpId", "jwks", "audiences"?, "credentialSeconds"?}`` from the control API."""
        if "idpId" in spec:
            jwks = spec.get("jwks")
            if not isinstance(jwks, dict) or not isinstance(jwks.get("keys"), list):
                raise ValueError('jwks must be a JSON Web Key Set: {"keys": [...]}')
            audiences = tuple(str(a) for a in spec.get("audiences") or ())
            self.providers[str(spec["idpId"])] = IdentityProvider(jwks, audiences)
        if "credentialSeconds" in spec:
            seconds = spec["credentialSeconds"]
            self.credential_seconds = None if seconds is None else float(seconds)

    def describe(self) -> dict[str, Any]:
        return {
            "providers": sorted(self.providers),
            "credentialSeconds": self.credential_seconds,
            "issued": dict(self.issued),
        }


def routes(identity: Identity) -> list[BaseRoute]:
    """IAM's two token calls and the metadata service's two paths."""

    async def id_token(request: Request) -> Response:
        try:
            body = await _json(request)
            token, expires = identity.exchange_id_token(request.headers.get("x-idp-id", ""), body)
        except IamError as error:
            return error.response()
        stamp = datetime.fromtimestamp(expires, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        reply = {"token": {"expires_at": stamp, "methods": ["mapped"]}}
        return json_response(reply, status=201, headers={"X-Subject-Token": token})

    async def security_token(request: Request) -> Response:
        try:
            body = await _json(request)
            reply = identity.security_token(request.headers.get("x-auth-token"), body)
        except IamError as error:
            return error.response()
        return json_response(reply, status=201)

    async def metadata_session(request: Request) -> Response:
        return Response(secrets.token_urlsafe(32), media_type="text/plain")

    async def metadata_key(request: Request) -> Response:
        return json_response(identity.metadata_key())

    return [
        Route("/v3.0/OS-AUTH/id-token/tokens", id_token, methods=["POST"]),
        Route("/v3.0/OS-CREDENTIAL/securitytokens", security_token, methods=["POST"]),
        Route("/meta-data/latest/api/token", metadata_session, methods=["PUT"]),
        Route("/openstack/latest/securitykey", metadata_key, methods=["GET"]),
    ]


async def _json(request: Request) -> Any:
    try:
        return json.loads(await request.body() or b"null")
    except ValueError:
        raise IamError(400, "Bad Request", "the body is not JSON") from None


def _dig(data: Any, *path: str) -> Any:
    for name in path:
        if not isinstance(data, dict):
            return None
        data = data.get(name)
    return data
