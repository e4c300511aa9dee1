"""AK/SK request signing ("SDK-HMAC-SHA256"), shared by the client and the emulator.

Huawei Cloud's API gateway authenticates AK/SK calls with a signature over a canonical
form of the request (devg-apisign/api-sign-0001; the reference implementation is
``huaweicloudsdkcore/signer/signer.py``). Both sides of our wire use this one module,
so the client cannot sign something the emulator would not verify.

It is pure and stdlib-only: no clock (callers pass ``now``), no httpx, no I/O. Header
values are the text the client meant to send. The query is canonicalised from the URL,
and a client must send that canonical query (``encode_query``) byte for byte, as the
SDK does, or the gateway's recomputation will differ.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import NamedTuple
from urllib.parse import parse_qsl, quote, unquote, urlsplit

ALGORITHM = "SDK-HMAC-SHA256"
SDK_DATE_FORMAT = "%Y%m%dT%H%M%SZ"

HEADER_DATE = "X-Sdk-Date"
HEADER_AUTHORIZATION = "Authorization"
HEADER_HOST = "Host"
# Set by the SDK for bodies that are neither JSON nor BSON; its value replaces the hash.
HEADER_CONTENT_SHA256 = "X-Sdk-Content-Sha256"
UNSIGNED_PAYLOAD = "UNSIGNED-PAYLOAD"
EMPTY_BODY_SHA256 = hashlib.sha256(b"").hexdigest()

# The gateway's accepted clock skew is 15 minutes (api-sign-0001, APIG.0301).
DEFAULT_WINDOW_SECONDS = 900.0

_AUTHORIZATION_RE = re.compile(
    r"^SDK-HMAC-SHA256 Access=([^,\s]+), SignedHeaders=([^,\s]+), Signature=([0-9a-f]{64})$"
)
_REQUIRED_SIGNED = ("host", "x-sdk-date")

QueryValue = str | int | bool


class SignatureError(ValueError):
    """A request whose AK/SK signature cannot be accepted; the message says why."""


class Authorization(NamedTuple):
    """The three parts of an ``Authorization: SDK-HMAC-SHA256 ...`` header."""

    access_key: str
    signed_headers: tuple[str, ...]
    signature: str


def _quote(text: str) -> str:
    # RFC 3986 unreserved characters stay; everything else is %XX in upper-case hex.
    return quote(text, safe="~")


def _query_text(value: QueryValue) -> str:
    # The SDK writes booleans as ``true``/``false``, not Python's ``True``.
    return str(value).lower() if isinstance(value, bool) else str(value)


def encode_query(params: Iterable[tuple[str, QueryValue]]) -> str:
    """The canonical query string: pairs sorted by key then value, each part %-encoded."""
    pairs = sorted((key, _query_text(value)) for key, value in params)
    return "&".join(f"{_quote(key)}={_quote(value)}" for key, value in pairs)


def canonical_query_string(query: str) -> str:
    """Canonicalise a raw query string as it appears in a URL (``a=1&b=x%20y``)."""
    return encode_query(parse_qsl(query, keep_blank_values=True))


def canonical_uri(path: str) -> str:
    """Each path segment decoded then re-encoded, always ending in ``/``."""
    uri = "/".join(_quote(segment) for segment in unquote(path).split("/"))
    return uri if uri.endswith("/") else uri + "/"


def _lower_keys(headers: Mapping[str, str]) -> dict[str, str]:
    return {name.lower(): value for name, value in headers.items()}


def signed_header_names(headers: Mapping[str, str]) -> list[str]:
    """Every header the SDK signs: lower-cased, sorted, names containing ``_`` skipped."""
    return sorted({name.lower() for name in headers if "_" not in name})


def hashed_payload(body: bytes, headers: Mapping[str, str]) -> str:
    """The hex SHA-256 of the body, or the ``X-Sdk-Content-Sha256`` override."""
    if not body:
        return EMPTY_BODY_SHA256
    override = _lower_keys(headers).get(HEADER_CONTENT_SHA256.lower())
    return override or hashlib.sha256(body).hexdigest()


def canonical_request(
    method: str,
    url: str,
    headers: Mapping[str, str],
    body: bytes,
    signed_headers: Sequence[str] | None = None,
) -> str:
    """The six-line canonical request the signature is computed over."""
    names = list(signed_headers) if signed_headers is not None else signed_header_names(headers)
    lowered = _lower_keys(headers)
    missing = [name for name in names if name not in lowered]
    if missing:
        raise SignatureError(f"signed header(s) missing from the request: {', '.join(missing)}")
    parts = urlsplit(url)
    canonical_headers = "".join(f"{name}:{lowered[name].strip()}\n" for name in names)
    return "\n".join(
        [
            method.upper(),
            canonical_uri(parts.path),
            canonical_query_string(parts.query),
            canonical_headers,
            ";".join(names),
            hashed_payload(body, headers),
        ]
    )


def string_to_sign(canonical: str, sdk_date: str) -> str:
    """Algorithm, date and the hex SHA-256 of the canonical request, one per line."""
    digest = hashlib.sha256(canonical.encode("utf-8")).hexdigest()
    return f"{ALGORITHM}\n{sdk_date}\n{digest}"


def signature(to_sign: str, secret_key: str) -> str:
    """The hex HMAC-SHA256 of the string to sign, keyed by the secret key."""
    return hmac.new(secret_key.encode("utf-8"), to_sign.encode("utf-8"), hashlib.sha256).hexdigest()


def format_authorization(auth: Authorization) -> str:
    """Render the ``Authorization`` header value exactly as the SDK does."""
    names = ";".join(auth.signed_headers)
    return (
        f"{ALGORITHM} Access={auth.access_key}, SignedHeaders={names}, Signature={auth.signature}"
    )


def parse_authorization(value: str) -> Authorization:
    """Split an ``Authorization`` header; raise ``SignatureError`` if it is not ours."""
    match = _AUTHORIZATION_RE.match(value.strip())
    if match is None:
        raise SignatureError(f"Authorization header is not {ALGORITHM} in the SDK format")
    access_key, names, sig = match.groups()
    return Authorization(access_key, tuple(names.split(";")), sig)


def format_sdk_date(now: datetime) -> str:
    """``now`` as ``X-Sdk-Date`` (UTC); a naive datetime is taken to be UTC already."""
    utc = now.astimezone(UTC) if now.tzinfo is not None else now
    return utc.strftime(SDK_DATE_FORMAT)


def parse_sdk_date(value: str) -> datetime:
    """Parse ``X-Sdk-Date`` into an aware UTC datetime; raise ``SignatureError`` if malformed."""
    try:
        return datetime.strptime(value.strip(), SDK_DATE_FORMAT).replace(tzinfo=UTC)
    except ValueError:
        raise SignatureError(
            f"X-Sdk-Date {value!r} is not in the format {SDK_DATE_FORMAT}"
        ) from None


def sign_request(
    method: str,
    url: str,
    headers: Mapping[str, str],
    body: bytes,
    *,
    access_key: str,
    secret_key: str,
    now: datetime,
) -> dict[str, str]:
    """The headers to add to a request so that it is signed: ``X-Sdk-Date`` and ``Authorization``.

    Every header in ``headers`` whose name has no ``_`` is signed, like the SDK does, so
    pass only the headers that will arrive unchanged (Host, Content-Type, X-Project-Id,
    X-Security-Token). ``Host`` is taken from the URL when absent, and a non-JSON body
    gets ``X-Sdk-Content-Sha256: UNSIGNED-PAYLOAD``, both as the SDK does; any such
    header is part of the returned dict too. ``now`` wins over a given ``X-Sdk-Date``.
    """
    if not access_key or not secret_key:
        raise SignatureError("both an access key and a secret key are needed to sign")
    added = _implied_headers(url, headers)
    added[HEADER_DATE] = format_sdk_date(now)
    full = {**_lower_keys(headers), **_lower_keys(added)}
    names = signed_header_names(full)
    to_sign = string_to_sign(canonical_request(method, url, full, body, names), added[HEADER_DATE])
    auth = Authorization(access_key, tuple(names), signature(to_sign, secret_key))
    added[HEADER_AUTHORIZATION] = format_authorization(auth)
    return added


def _implied_headers(url: str, headers: Mapping[str, str]) -> dict[str, str]:
    lowered = _lower_keys(headers)
    implied: dict[str, str] = {}
    if HEADER_HOST.lower() not in lowered:
        implied[HEADER_HOST] = urlsplit(url).netloc
    content_type = lowered.get("content-type")
    if content_type and not content_type.startswith(("application/json", "application/bson")):
        implied[HEADER_CONTENT_SHA256] = UNSIGNED_PAYLOAD
    return implied


def verify_request(
    method: str,
    url: str,
    headers: Mapping[str, str],
    body: bytes,
    *,
    secrets: Mapping[str, str],
    now: datetime,
    window_seconds: float = DEFAULT_WINDOW_SECONDS,
) -> str:
    """Check a received request's signature the way the gateway does; return its access key.

    Raises ``SignatureError`` for a missing or malformed ``Authorization``/``X-Sdk-Date``,
    a signed-header list without ``host`` and ``x-sdk-date``, an unknown access key, a
    date outside ``now ± window_seconds``, or a signature that does not match.
    """
    lowered = _lower_keys(headers)
    auth = parse_authorization(_required(lowered, HEADER_AUTHORIZATION))
    for name in _REQUIRED_SIGNED:
        if name not in auth.signed_headers:
            raise SignatureError(f"SignedHeaders must include {name}")
    sdk_date = _required(lowered, HEADER_DATE)
    _check_window(parse_sdk_date(sdk_date), now, window_seconds)
    secret_key = secrets.get(auth.access_key)
    if secret_key is None:
        raise SignatureError(f"unknown access key {auth.access_key!r}")
    canonical = canonical_request(method, url, lowered, body, auth.signed_headers)
    expected = signature(string_to_sign(canonical, sdk_date.strip()), secret_key)
    if not hmac.compare_digest(expected, auth.signature):
        raise SignatureError("signature mismatch: the request was not signed with this secret key")
    return auth.access_key


def _required(lowered: Mapping[str, str], name: str) -> str:
    value = lowered.get(name.lower())
    if not value:
        raise SignatureError(f"missing {name} header")
    return value


def _check_window(signed_at: datetime, now: datetime, window_seconds: float) -> None:
    current = now.astimezone(UTC) if now.tzinfo is not None else now.replace(tzinfo=UTC)
    if abs(current - signed_at) > timedelta(seconds=window_seconds):
        raise SignatureError(
            f"X-Sdk-Date {signed_at:%Y-%m-%dT%H:%M:%SZ} is more than {window_seconds:.0f}s "
            f"from server time {current:%Y-%m-%dT%H:%M:%SZ} (expired or clock skew)"
        )
