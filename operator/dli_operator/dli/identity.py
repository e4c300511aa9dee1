"""Where the operator's own credentials come from, each kept fresh without a restart (issue 11).

- ``StaticCredentials``: keys given once (environment variables).
- ``FileCredentials``: a mounted ``dli.dev/credentials`` Secret (files ``accessKey``,
  ``secretKey``, ``securityToken``), re-read as soon as the kubelet swaps in new content.
- ``OidcCredentials``: workload identity on CCE. The pod's projected ServiceAccount token is an
  OpenID Connect ID token; IAM exchanges it for a federated token
  (``POST /v3.0/OS-AUTH/id-token/tokens`` with ``X-Idp-Id``, iam_13_0605) and that token for
  temporary AK/SK and a security token (``POST /v3.0/OS-CREDENTIAL/securitytokens``, iam_04_0002),
  exactly as ``huaweicloudsdkcore``'s ``FederalAccessor`` does.
- ``MetadataCredentials``: the node's agency through the ECS metadata service
  (``GET /openstack/latest/securitykey``, with the optional ``X-Metadata-Token`` session token
  from ``PUT /meta-data/latest/api/token``), as the SDK's ``MetadataAccessor`` does.

Temporary keys are renewed before they expire: ``refresh_before`` early (the SDK uses 40 min),
or halfway through their lifetime if that is sooner. A failed renewal keeps the current keys
while they are still valid, and is tried again on the next use. Knows nothing of Kubernetes.
"""

from __future__ import annotations

import asyncio
import json
import logging
from abc import ABC, abstractmethod
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from dli_operator.dli.auth import Credentials
from dli_operator.dli.errors import (
    DliError,
    DliProtocolError,
    IdentityError,
    api_error,
    mask_credentials,
    parse_error_body,
)
from dli_operator.dli.responses import transport_error

logger = logging.getLogger(__name__)

ID_TOKEN_PATH = "/v3.0/OS-AUTH/id-token/tokens"
SECURITY_TOKEN_PATH = "/v3.0/OS-CREDENTIAL/securitytokens"
METADATA_TOKEN_PATH = "/meta-data/latest/api/token"
METADATA_KEY_PATH = "/openstack/latest/securitykey"
# The SDK asks the metadata service for a 6 h session token (MetadataAccessor).
METADATA_TOKEN_TTL_SECONDS = 6 * 3600
# The SDK renews temporary keys 40 minutes before they expire (credentials.py).
DEFAULT_REFRESH_BEFORE_SECONDS = 40 * 60.0
KEY_FILES = ("accessKey", "secretKey", "securityToken")


def _utcnow() -> datetime:
    return datetime.now(UTC)


class CredentialsProvider(ABC):
    """A source of credentials; ``get()`` returns current ones, renewing them when due."""

    description: str = "credentials"

    @abstractmethod
    async def get(self) -> Credentials: ...

    async def aclose(self) -> None:
        return None


class StaticCredentials(CredentialsProvider):
    description = "the operator's environment"

    def __init__(self, credentials: Credentials) -> None:
        self._credentials = credentials

    async def get(self) -> Credentials:
        return self._credentials


class FileCredentials(CredentialsProvider):
    """Keys from a mounted Secret, re-read when any file changes (rotation without restart)."""

    def __init__(self, directory: str | Path) -> None:
        self._dir = Path(directory)
        self.description = f"the files in {self._dir}"
        self._seen: tuple[tuple[int, int, int], ...] | None = None
        self._credentials: Credentials | None = None

    async def get(self) -> Credentials:
        stamp = tuple(self._stamp(name) for name in KEY_FILES)
        if self._credentials is None or stamp != self._seen:
            self._credentials = self._read()
            self._seen = stamp
        return self._credentials

    def _stamp(self, name: str) -> tuple[int, int, int]:
        # The kubelet swaps a symlink to a new directory: stat() follows it to the new file.
        try:
            info = (self._dir / name).stat()
        except OSError:
            return (0, 0, 0)
        return (info.st_ino, info.st_mtime_ns, info.st_size)

    def _read(self) -> Credentials:
        values = {name: self._value(name) for name in KEY_FILES}
        access_key, secret_key = values["accessKey"], values["secretKey"]
        if not (access_key and secret_key):
            raise IdentityError(f"{self._dir} has no accessKey and secretKey files")
        return Credentials(access_key, secret_key, values["securityToken"] or None)

    def _value(self, name: str) -> str:
        try:
            return (self._dir / name).read_text(encoding="utf-8").strip()
        except FileNotFoundError:
            return ""
        except (OSError, UnicodeDecodeError) as exc:
            raise IdentityError(f"cannot read {self._dir / name}: {type(exc).__name__}") from None


class RefreshingCredentials(CredentialsProvider):
    """Temporary keys with an expiry, fetched again before they run out."""

    def __init__(
        self,
        *,
        refresh_before_seconds: float = DEFAULT_REFRESH_BEFORE_SECONDS,
        transport: httpx.AsyncBaseTransport | None = None,
        timeout_seconds: float = 10.0,
        clock: Callable[[], datetime] = _utcnow,
    ) -> None:
        self._refresh_before = timedelta(seconds=refresh_before_seconds)
        self._clock = clock
        self._lock = asyncio.Lock()
        self._credentials: Credentials | None = None
        self._obtained = self._expires = datetime.min.replace(tzinfo=UTC)
        self._http = httpx.AsyncClient(
            transport=transport, timeout=timeout_seconds, follow_redirects=False, trust_env=False
        )

    @property
    def expires_at(self) -> datetime | None:
        return self._expires if self._credentials else None

    async def aclose(self) -> None:
        await self._http.aclose()

    async def get(self) -> Credentials:
        if self._credentials is not None and not self._due():
            return self._credentials
        async with self._lock:
            if self._credentials is None or self._due():
                await self._renew()
            assert self._credentials is not None
            return self._credentials

    def _due(self) -> bool:
        margin = min(self._refresh_before, (self._expires - self._obtained) / 2)
        return self._clock() >= self._expires - margin

    async def _renew(self) -> None:
        try:
            credentials, expires = await self._fetch()
        except DliError as exc:
            if self._credentials is None or self._clock() >= self._expires:
                raise
            logger.warning(
                "renewing %s failed, keeping the current keys: %s", self.description, exc
            )
            return
        self._credentials, self._obtained, self._expires = credentials, self._clock(), expires
        logger.info("obtained temporary keys from %s, valid until %s", self.description, expires)

    @abstractmethod
    async def _fetch(self) -> tuple[Credentials, datetime]: ...

    async def _send(
        self, operation: str, request: httpx.Request, secrets: tuple[str, ...] = ()
    ) -> httpx.Response:
        """Send one IAM or metadata call; errors carry no token or key (``mask_credentials``)."""
        try:
            return await self._answer(operation, request)
        except DliError as exc:
            keys = self._credentials
            held = (keys.access_key, keys.secret_key, keys.security_token) if keys else ()
            mask_credentials(exc, (*secrets, *held))
            raise

    async def _answer(self, operation: str, request: httpx.Request) -> httpx.Response:
        try:
            response = await self._http.send(request)
        except (httpx.HTTPError, httpx.StreamError, httpx.InvalidURL) as exc:
            raise transport_error(exc, operation) from exc
        if response.status_code >= 400:
            ctype = str(response.headers.get("Content-Type", ""))
            body = parse_error_body(response.status_code, response.content, ctype)
            rid = response.headers.get("X-Request-Id")
            raise api_error(response.status_code, body, request_id=rid, operation=operation)
        return response


class OidcCredentials(RefreshingCredentials):
    """Workload identity: the projected ServiceAccount token exchanged at IAM (FederalAccessor)."""

    def __init__(
        self,
        *,
        iam_endpoint: str,
        idp_id: str,
        token_file: str | Path,
        duration_seconds: int = 3600,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self._iam = iam_endpoint.rstrip("/")
        self._idp_id = idp_id
        self._token_file = Path(token_file)
        self._duration = duration_seconds
        self.description = f"IAM identity provider {idp_id} at {self._iam}"

    async def _fetch(self) -> tuple[Credentials, datetime]:
        federated = await self._federated_token()
        body = {
            "auth": {
                "identity": {
                    "methods": ["token"],
                    "token": {"id": federated, "duration_seconds": self._duration},
                }
            }
        }
        request = httpx.Request(
            "POST",
            self._iam + SECURITY_TOKEN_PATH,
            headers={"Content-Type": "application/json;charset=utf8", "X-Auth-Token": federated},
            content=json.dumps(body).encode(),
        )
        response = await self._send("iam_security_token", request, (federated,))
        return _credential(response, "iam_security_token")

    def _id_token(self) -> str:
        # Re-read every time: the kubelet rotates the projected token (at 80 % of its life).
        try:
            id_token = self._token_file.read_text(encoding="utf-8").strip()
        except (OSError, UnicodeDecodeError) as exc:
            raise IdentityError(
                f"cannot read the ServiceAccount token {self._token_file}: {type(exc).__name__}"
            ) from None
        if not id_token:
            raise IdentityError(f"the ServiceAccount token {self._token_file} is empty")
        return id_token

    async def _federated_token(self) -> str:
        id_token = self._id_token()
        request = httpx.Request(
            "POST",
            self._iam + ID_TOKEN_PATH,
            headers={"Content-Type": "application/json;charset=utf8", "X-Idp-Id": self._idp_id},
            content=json.dumps({"auth": {"id_token": {"id": id_token}}}).encode(),
        )
        response = await self._send("iam_id_token", request, (id_token,))
        token = response.headers.get("X-Subject-Token")
        if not token:
            raise DliProtocolError("IAM returned no X-Subject-Token", operation="iam_id_token")
        return str(token)


class MetadataCredentials(RefreshingCredentials):
    """The node's agency keys from the ECS metadata service (SDK MetadataAccessor)."""

    def __init__(self, *, endpoint: str = "http://169.254.169.254", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._endpoint = endpoint.rstrip("/")
        self.description = f"the metadata service at {self._endpoint}"

    async def _fetch(self) -> tuple[Credentials, datetime]:
        headers = {}
        session = await self._session_token()
        if session:
            headers["X-Metadata-Token"] = session
        request = httpx.Request("GET", self._endpoint + METADATA_KEY_PATH, headers=headers)
        response = await self._send("metadata_securitykey", request)
        return _credential(response, "metadata_securitykey")

    async def _session_token(self) -> str | None:
        """The optional session token; older metadata services have none (404/405)."""
        request = httpx.Request(
            "PUT",
            self._endpoint + METADATA_TOKEN_PATH,
            headers={"X-Metadata-Token-Ttl-Seconds": str(METADATA_TOKEN_TTL_SECONDS)},
        )
        try:
            response = await self._send("metadata_token", request)
        except DliError as exc:
            if getattr(exc, "status", None) in (404, 405, 503):
                return None
            raise
        return response.text.strip() or None


def _credential(response: httpx.Response, operation: str) -> tuple[Credentials, datetime]:
    """``{"credential": {"access", "secret", "securitytoken", "expires_at"}}`` (iam_04_0002)."""
    try:
        data = response.json()
        cred = data.get("credential") or data.get("credentials") or data
        keys = Credentials(cred["access"], cred["secret"], cred["securitytoken"])
        expires = datetime.fromisoformat(cred["expires_at"]).astimezone(UTC)
    except (ValueError, KeyError, TypeError, AttributeError):
        raise DliProtocolError(
            f"{operation}: the reply is not a temporary credential", operation=operation
        ) from None
    if not (keys.access_key and keys.secret_key and keys.security_token):
        raise DliProtocolError(f"{operation}: the reply lacks a key", operation=operation)
    return keys, expires
