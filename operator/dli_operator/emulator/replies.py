"""Error replies in the two shapes a DLI client meets: DLI's own and the API gateway's.

DLI answers ``{"error_code", "error_msg"}`` (dli_02_0056); the gateway in front of it (APIG) adds
``request_id`` to the same shape. Handlers raise ``ApiError`` and one exception handler turns it
into a response, so no endpoint builds an error body by hand.
"""

from __future__ import annotations

import json

from starlette.responses import Response

# Gateway messages, as the APIG error pages word them (dli-api.md section 3).
AUTH_FAILED = "Incorrect IAM authentication information: {detail}"
NO_SUCH_API = "The API does not exist or has not been published in the environment"
THROTTLED = (
    "The throttling threshold has been reached: "
    "policy user over ratelimit,limit:{limit},time:1 minute"
)


class ApiError(Exception):
    """An error reply: HTTP status, error code and message, plus optional extra headers."""

    def __init__(
        self, status: int, code: str, message: str, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers or {}

    @property
    def from_gateway(self) -> bool:
        """Gateway errors (APIG.*) carry the request id in the body as well."""
        return self.code.startswith("APIG")


def bad_parameter(message: str) -> ApiError:
    """DLI.0001, "parameter check error" (dli_02_0056)."""
    return ApiError(400, "DLI.0001", message)


def not_found(message: str) -> ApiError:
    """DLI.0002, "object does not exist": unknown queues and batch ids (dli_02_0056)."""
    return ApiError(400, "DLI.0002", message)


def error_response(error: ApiError, request_id: str) -> Response:
    """Render an ``ApiError`` as DLI or the gateway would."""
    body: dict[str, str] = {"error_code": error.code, "error_msg": error.message}
    if error.from_gateway:
        body["request_id"] = request_id
    return json_response(body, status=error.status, headers=error.headers)


def json_response(
    body: object, *, status: int = 200, headers: dict[str, str] | None = None
) -> Response:
    """Compact JSON with DLI's content type; cheaper than Starlette's JSONResponse re-encoding."""
    payload = json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()
    return Response(payload, status_code=status, headers=headers, media_type="application/json")
