"""Everything ``DliClient`` raises, and the one function that turns an error response into it.

::

    DliError                        base of everything DliClient raises; .operation
    ├── DliTransportError           no usable response; chained from the httpx exception
    │   ├── DliConnectError         the request provably never reached the server
    │   │                           (connection refused, DNS, TLS, connect/pool timeout)
    │   └── DliTimeoutError         sent (maybe received by DLI), no answer in time
    ├── DliProtocolError            a 2xx we cannot read: not JSON, or not the documented shape
    └── DliApiError                 an error response: .status, .error_code, .error_msg, .request_id
        ├── DliClientError          4xx, and ``is_success: false`` bodies
        │   ├── DliAuthError        401/403, APIG.0301, DLI.0013/0014 (bad signature, token expired)
        │   ├── DliNotFound         404, DLI.0002 "object does not exist", DLI.0023
        │   ├── DliRouteNotFound    APIG.0101: wrong endpoint or path, a configuration error
        │   ├── DliConflict         409, DLI.0006 "object exists"
        │   └── DliThrottled        429, APIG.0308 (.retry_after, like every DliApiError)
        └── DliServerError          5xx (an HTML 502 page too); DLI.0999, though sent as 400

Classes are chosen by the error code first, then by HTTP status, because DLI reports
most errors as 400 whatever they mean (dli_02_0056) and the gateway's codes are stable.
Which of these are worth retrying is data in ``retries.py``, not here. Pure: no httpx.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from typing import ClassVar

from pydantic import ValidationError

from dli_operator.dli.models import ErrorBody

# How much of a non-JSON error body to quote in a message.
BODY_EXCERPT_CHARS = 200
MASK = "***"
# Huawei access keys, permanent and temporary, are 20 upper-case letters and digits; the gateway
# may echo one in an APIG.0301 message ("Get secretKey failed", an unknown or locked AK).
_ACCESS_KEY_SHAPE = re.compile(r"\b[A-Z0-9]{20}\b")
# Shorter values are not masked: they would blank out ordinary words of the message.
MASK_MIN_CHARS = 4


class DliError(Exception):
    """Base of everything the DLI client raises."""

    outcome: ClassVar[str] = "error"
    """A short, bounded label for metrics: one per class."""

    def __init__(self, message: str, *, operation: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.operation = operation


class DliTransportError(DliError):
    """No usable response: the connection failed, timed out or broke."""

    outcome = "transport_error"


class DliConnectError(DliTransportError):
    """The request never left: connection refused, DNS failure, TLS failure, connect timeout."""

    outcome = "connect_error"


class DliTimeoutError(DliTransportError):
    """The request may have reached DLI, but no complete answer came back in time."""

    outcome = "timeout"


class DliProtocolError(DliError):
    """A success status with a body that is not the documented JSON."""

    outcome = "bad_response"


class DliApiError(DliError):
    """An error response from DLI or from the API gateway in front of it."""

    outcome = "api_error"

    def __init__(
        self,
        *,
        status: int,
        error_code: str,
        error_msg: str,
        request_id: str | None = None,
        retry_after: float | None = None,
        operation: str | None = None,
    ) -> None:
        where = f"DLI {operation}" if operation else "DLI"
        rid = f" (request id {request_id})" if request_id else ""
        super().__init__(
            f"{where}: HTTP {status} {error_code}: {error_msg}{rid}", operation=operation
        )
        self.status = status
        self.error_code = error_code
        self.error_msg = error_msg
        self.request_id = request_id
        self.retry_after = retry_after
        """Seconds the server asked us to wait (``Retry-After``), on 429 and 503 alike."""


class DliClientError(DliApiError):
    outcome = "client_error"


class DliAuthError(DliClientError):
    outcome = "auth_error"


class DliNotFound(DliClientError):
    outcome = "not_found"


class DliRouteNotFound(DliClientError):
    outcome = "no_route"


class DliConflict(DliClientError):
    outcome = "conflict"


class DliThrottled(DliClientError):
    outcome = "throttled"


class DliServerError(DliApiError):
    outcome = "server_error"


class IdentityError(DliError):
    """The operator's own credentials cannot be had: a file is missing, a reply is unusable.

    Raised by ``dli.identity``; defined here so that the error tree, and the metrics' zero
    series for every outcome (``metrics.api_outcomes``), never depend on what was imported."""

    outcome = "identity_error"


# Codes from dli_02_0056 and the APIG error pages (dli-api.md §3); newer gateways say APIGW.
_CLASS_BY_CODE: dict[str, type[DliApiError]] = {
    "APIG.0301": DliAuthError,
    "APIGW.0301": DliAuthError,
    "DLI.0013": DliAuthError,
    "DLI.0014": DliAuthError,
    "APIG.0101": DliRouteNotFound,
    "APIGW.0101": DliRouteNotFound,
    "DLI.0002": DliNotFound,
    "DLI.0023": DliNotFound,
    "DLI.0006": DliConflict,
    "APIG.0308": DliThrottled,
    "APIGW.0308": DliThrottled,
    "DLI.0999": DliServerError,
}
_CLASS_BY_STATUS: dict[int, type[DliApiError]] = {
    401: DliAuthError,
    403: DliAuthError,
    404: DliNotFound,
    409: DliConflict,
    429: DliThrottled,
}


def error_class(status: int, error_code: str) -> type[DliApiError]:
    """The class for an error response: by code, then by status."""
    by_code = _CLASS_BY_CODE.get(error_code)
    if by_code is not None:
        return by_code
    by_status = _CLASS_BY_STATUS.get(status)
    if by_status is not None:
        return by_status
    return DliServerError if status >= 500 else DliClientError


def parse_error_body(status: int, body: bytes, content_type: str = "") -> ErrorBody:
    """Read an error body; a non-JSON one (an HTML 502 page) becomes a readable message.

    Like the SDK, a body without a code gets the HTTP status as its code.
    """
    parsed = _json_error(body)
    if parsed is None:
        parsed = ErrorBody(error_msg=_describe_non_json(status, body, content_type))
    if not parsed.error_code:
        parsed = parsed.model_copy(update={"error_code": str(status)})
    if not parsed.error_msg:
        parsed = parsed.model_copy(update={"error_msg": f"HTTP {status} without an error message"})
    return parsed


def _json_error(body: bytes) -> ErrorBody | None:
    try:
        data = json.loads(body)
    except ValueError:
        return None
    if not isinstance(data, dict):
        return None
    # IAM nests its error: {"error": {"code": 401, "message": ..., "title": ...}}.
    nested = data.get("error")
    if isinstance(nested, dict) and not ErrorBody.model_fields.keys() & data.keys():
        data = nested
    try:
        return ErrorBody.model_validate(data)
    except ValidationError:
        return None


def _describe_non_json(status: int, body: bytes, content_type: str) -> str:
    text = body.decode("utf-8", errors="replace")
    title = re.search(r"<title>(.*?)</title>", text, re.IGNORECASE | re.DOTALL)
    excerpt = title.group(1) if title else text
    excerpt = " ".join(excerpt.split())[:BODY_EXCERPT_CHARS]
    kind = content_type.split(";")[0].strip() or "unknown content type"
    return f"HTTP {status} with a non-JSON body ({kind}): {excerpt!r}"


def api_error(
    status: int,
    body: ErrorBody,
    *,
    request_id: str | None,
    retry_after: float | None = None,
    operation: str | None = None,
) -> DliApiError:
    """Build the right ``DliApiError`` subclass for a parsed error response."""
    code = body.error_code or str(status)
    return error_class(status, code)(
        status=status,
        error_code=code,
        error_msg=body.error_msg or "",
        request_id=request_id or body.request_id,
        retry_after=retry_after,
        operation=operation,
    )


def mask_credentials(error: DliError, values: Iterable[str | None]) -> DliError:
    """Hide credential values, and anything shaped like an AK, in ``error``'s messages.

    The one place credentials are masked: every message copied from DLI, its gateway or IAM
    into status, Events and logs passes through a ``DliError`` built by the client (issue 11).
    """
    secrets = sorted({v for v in values if v and len(v) >= MASK_MIN_CHARS}, key=len, reverse=True)

    def mask(text: str) -> str:
        for value in secrets:
            text = text.replace(value, MASK)
        return _ACCESS_KEY_SHAPE.sub(MASK, text)

    error.message = mask(error.message)
    error.args = tuple(mask(a) if isinstance(a, str) else a for a in error.args)
    if isinstance(error, DliApiError):
        error.error_msg = mask(error.error_msg)
    return error
