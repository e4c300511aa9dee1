"""How an httpx response or exception becomes a wire model or a ``DliError``.

Kept apart from ``client.py`` so the send loop stays short. Non-JSON bodies (an HTML
502 page from a proxy), ``is_success: false`` envelopes and bodies that do not match
the documented shape all end as a ``DliError`` with a readable message, never a crash.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import TypeVar

import httpx
from pydantic import BaseModel, ValidationError

from dli_operator.dli.errors import (
    BODY_EXCERPT_CHARS,
    DliConnectError,
    DliError,
    DliProtocolError,
    DliTimeoutError,
    DliTransportError,
    api_error,
    parse_error_body,
)
from dli_operator.dli.models import ErrorBody
from dli_operator.dli.retries import parse_retry_after

M = TypeVar("M", bound=BaseModel)

# The spellings of an error code the SDK's exception handler reads (see ``ErrorBody``).
ERROR_CODE_KEYS = ("error_code", "errorCode")

# httpx exceptions that mean the request never left this process.
_NEVER_SENT = (
    httpx.ConnectError,
    httpx.ConnectTimeout,
    httpx.PoolTimeout,
    httpx.UnsupportedProtocol,
)


def transport_error(exc: Exception, operation: str) -> DliTransportError:
    text = f"DLI {operation}: {type(exc).__name__}: {exc}"
    if isinstance(exc, _NEVER_SENT):
        return DliConnectError(f"{text} (the request was not sent)", operation=operation)
    if isinstance(exc, httpx.TimeoutException):
        return DliTimeoutError(f"{text} (the request may have reached DLI)", operation=operation)
    return DliTransportError(text, operation=operation)


def decode_response(response: httpx.Response, content: bytes, model: type[M], operation: str) -> M:
    """The model a 2xx ``content`` holds, or the ``DliError`` an error reply or bad body means."""
    status = response.status_code
    content_type = response.headers.get("Content-Type", "")
    if not 200 <= status < 300:
        body = parse_error_body(status, content, content_type)
        raise _api_error(response, body, operation)
    try:
        data = json.loads(content)
    except ValueError:
        body = parse_error_body(status, content, content_type)
        raise DliProtocolError(f"DLI {operation}: {body.error_msg}", operation=operation) from None
    # The v1.0 envelope (dli_02_0174): a 200 can still say it failed.
    if isinstance(data, dict) and data.get("is_success") is False:
        raise _api_error(response, ErrorBody.model_validate(data), operation)
    _refuse_error_body(data, status, operation)
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "body"
        text = f"HTTP {status} body is not a {model.__name__}: {where}: {first['msg']}"
        raise DliProtocolError(f"DLI {operation}: {text}", operation=operation) from None


def _refuse_error_body(data: object, status: int, operation: str) -> None:
    """A 2xx that carries ``error_code`` is an error in disguise, never an (empty) answer.

    Gateways and DLI itself have sent ``{"error_code": "DLI.0999", ...}`` with 200; reading
    that as a list without sessions made adoption post a job twice (issue 10, item 4). It is
    a protocol error, which is retried: the request may well succeed next time.
    """
    if not isinstance(data, dict):
        return
    code = next((data[k] for k in ERROR_CODE_KEYS if data.get(k) not in (None, "")), None)
    if code is None:
        return
    body = parse_error_body(status, json.dumps(data).encode(), "application/json")
    text = f"HTTP {status} with an error body: {str(code)[:64]}: {body.error_msg}"
    raise DliProtocolError(
        f"DLI {operation}: {text[: BODY_EXCERPT_CHARS * 2]}", operation=operation
    )


def _api_error(response: httpx.Response, body: ErrorBody, operation: str) -> DliError:
    retry_after = parse_retry_after(response.headers.get("Retry-After"), datetime.now(UTC))
    request_id = response.headers.get("X-Request-Id")
    return api_error(
        response.status_code,
        body,
        request_id=request_id,
        retry_after=retry_after,
        operation=operation,
    )
