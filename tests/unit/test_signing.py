"""Our AK/SK signer against the published vectors and, byte for byte, the official SDK's."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from urllib.parse import quote

import pytest
from huaweicloudsdkcore.auth.credentials import BasicCredentials
from huaweicloudsdkcore.sdk_request import SdkRequest
from huaweicloudsdkcore.signer.signer import Signer
from hypothesis import given, settings
from hypothesis import strategies as st

from dli_operator.dli.signing import (
    SDK_DATE_FORMAT,
    SignatureError,
    canonical_request,
    canonical_uri,
    encode_query,
    parse_authorization,
    sign_request,
    signature,
    string_to_sign,
    verify_request,
)

AK = "HPUAEXAMPLEAK0000001"
SK = "exampleSecretKey0123456789abcdefghijklmn"
PID = "0123456789abcdef0123456789abcdef"
HOST = "dli.cn-north-4.myhuaweicloud.com"
NOW = datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC)
BATCH = "0a324461-d9d9-45da-a52a-3b3c7a3d809e"
TV2_BODY = (
    b'{"file":"obs://bucket/spark-examples.jar","className":"org.apache.spark.examples.SparkPi",'
    b'"queue":"q1","name":"demo","conf":{"spark.dli.metaAccess.enable":"true"}}'
)
QueryParam = tuple[str, str | int | bool | list[str]]


def base_headers(content_type: str = "application/json") -> dict[str, str]:
    return {"Content-Type": content_type, "X-Project-Id": PID, "Host": HOST}


def sdk_sign(
    method: str,
    path: str,
    query: list[QueryParam],
    headers: dict[str, str],
    body: bytes,
    now: datetime = NOW,
    secret_key: str = SK,
) -> tuple[str, str]:
    """The official Signer's Authorization header and the URI it would send."""
    hdrs = {**headers, "X-Sdk-Date": now.strftime(SDK_DATE_FORMAT)}
    request = SdkRequest(
        method=method,
        schema="https",
        host=HOST,
        resource_path=path,
        query_params=[(k, list(v) if isinstance(v, list) else v) for k, v in query],
        header_params=hdrs,
        body=body,
    )
    signed = Signer(BasicCredentials(AK, secret_key)).sign(request)
    return signed.header_params["Authorization"], signed.uri


def our_url(path: str, query: list[QueryParam]) -> str:
    pairs = [(k, item) for k, v in query for item in (v if isinstance(v, list) else [v])]
    qs = encode_query(pairs)
    return f"https://{HOST}{path}" + (f"?{qs}" if qs else "")


def test_published_vector_tv1_get_state_matches_byte_for_byte() -> None:
    url = f"https://{HOST}/v2.0/{PID}/batches/{BATCH}/state"
    added = sign_request("GET", url, base_headers(), b"", access_key=AK, secret_key=SK, now=NOW)
    assert added == {
        "X-Sdk-Date": "20250102T030405Z",
        "Authorization": "SDK-HMAC-SHA256 Access=HPUAEXAMPLEAK0000001, "
        "SignedHeaders=content-type;host;x-project-id;x-sdk-date, "
        "Signature=ef59aaec470b721956bd43eac986a2b109c22137ebc33341d919ca3565d6dea0",
    }


def test_published_vector_tv1_intermediate_strings_match() -> None:
    url = f"https://{HOST}/v2.0/{PID}/batches/{BATCH}/state"
    headers = {**base_headers(), "X-Sdk-Date": "20250102T030405Z"}
    canonical = canonical_request("GET", url, headers, b"")
    assert canonical == (
        f"GET\n/v2.0/{PID}/batches/{BATCH}/state/\n\n"
        "content-type:application/json\nhost:dli.cn-north-4.myhuaweicloud.com\n"
        f"x-project-id:{PID}\nx-sdk-date:20250102T030405Z\n\n"
        "content-type;host;x-project-id;x-sdk-date\n" + hashlib.sha256(b"").hexdigest()
    )
    to_sign = string_to_sign(canonical, "20250102T030405Z")
    assert to_sign.endswith("cbecb3513cdf3341aadcf03ac0441634a8bffa6d445d0b5fea9c9b4503517b41")


def test_published_vector_tv2_post_create_matches_byte_for_byte() -> None:
    headers = base_headers("application/json;charset=utf-8")
    url = f"https://{HOST}/v2.0/{PID}/batches"
    added = sign_request("POST", url, headers, TV2_BODY, access_key=AK, secret_key=SK, now=NOW)
    assert added["Authorization"].endswith(
        "Signature=0063403e157b60a2e73b30e6eb5fc118edd75e74090522ded2b10ef8dc7f5f5c"
    )
    dated = {**headers, "X-Sdk-Date": added["X-Sdk-Date"]}
    canonical = canonical_request("POST", url, dated, TV2_BODY)
    assert string_to_sign(canonical, added["X-Sdk-Date"]).endswith(
        "5689e7cd23856a47359367e8b84afb153cce3658f6e38f1d41230525245f3cdd"
    )


@pytest.mark.parametrize(
    ("method", "path", "query", "extra", "body"),
    [
        ("GET", f"/v2.0/{PID}/batches", [("queue_name", "q1"), ("size", 100), ("from", 0),
         ("state", "running"), ("job_name", "my job:1"), ("job-id", BATCH)], {}, b""),
        ("DELETE", f"/v2.0/{PID}/batches/{BATCH}", [], {}, b""),
        ("GET", f"/v2.0/{PID}/batches", [("job_name", "ünïcödé/名前 +&=?#%")], {}, b""),
        ("GET", "/v2.0/p/a b/c%2Fd/~x!*'()", [("flag", True), ("off", False)], {}, b""),
        ("GET", "/", [("k", ["b", "a", "a c"])], {}, b""),
        ("POST", f"/v2.0/{PID}/batches", [], {}, '{"name":"数据"}'.encode()),
        ("POST", "/x", [], {"Content-Type": "text/plain"}, b"not json"),
        ("GET", "/x", [], {"X-Security-Token": "EXAMPLESECURITYTOKEN+/="}, b""),
        ("GET", "/x", [], {"User_Agent": "skipped: has an underscore", "X-Trace": "  pad  "}, b""),
        ("PUT", "/x", [("empty", "")], {}, b"\x00\xff" * 5000),
    ],
)  # fmt: skip
def test_authorization_equals_the_sdk_signer_for_tricky_requests(
    method: str, path: str, query: list[QueryParam], extra: dict[str, str], body: bytes
) -> None:
    headers = {**base_headers(), **extra}
    # Both get the path as it goes on the wire (existing escapes kept, as requests does).
    wire_path = quote(path, safe="/%")
    expected_auth, expected_uri = sdk_sign(method, wire_path, query, headers, body)
    url = our_url(wire_path, query)
    added = sign_request(method, url, headers, body, access_key=AK, secret_key=SK, now=NOW)
    assert added["Authorization"] == expected_auth
    assert url == f"https://{HOST}{expected_uri}"


def test_temporary_credentials_sign_like_the_sdk_credentials_object() -> None:
    token = "EXAMPLESECURITYTOKEN+/="
    cred = BasicCredentials(AK, SK, PID).with_security_token(token)
    request = SdkRequest(
        method="GET",
        schema="https",
        host=HOST,
        resource_path=f"/v2.0/{PID}/batches",
        query_params=[("queue_name", "q1"), ("size", 100), ("job_name", "my job:1")],
        header_params={"Content-Type": "application/json", "X-Sdk-Date": "20250102T030405Z"},
        body="",
    )
    signed = cred.sign_request(request)
    headers = {
        "Content-Type": "application/json",
        "Host": HOST,
        "X-Project-Id": PID,
        "X-Security-Token": token,
    }
    url = f"https://{HOST}{signed.uri}"
    added = sign_request("GET", url, headers, b"", access_key=AK, secret_key=SK, now=NOW)
    assert added["Authorization"] == signed.header_params["Authorization"]
    assert "x-security-token" in parse_authorization(added["Authorization"]).signed_headers


header_names = st.text(alphabet="abcdefghijklmnopqrstuvwxyz-_0123456789", min_size=1, max_size=12)
header_values = st.text(min_size=1, max_size=30).filter(lambda v: "\n" not in v and "\r" not in v)
query_values = st.one_of(
    st.text(max_size=20),
    st.integers(min_value=0, max_value=10**12),
    st.booleans(),
    st.lists(st.text(max_size=8), min_size=1, max_size=4),
)


@settings(max_examples=300, deadline=None, database=None)
@given(
    method=st.sampled_from(["GET", "POST", "DELETE", "PUT", "PATCH"]),
    segments=st.lists(st.text(min_size=1, max_size=12).filter(lambda s: "/" not in s), max_size=4),
    query=st.dictionaries(st.text(min_size=1, max_size=10), query_values, max_size=5),
    extra=st.dictionaries(header_names, header_values, max_size=3),
    token=st.none() | st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789+/=", min_size=8),
    body=st.one_of(
        st.just(b""), st.binary(max_size=64), st.binary(min_size=70_000, max_size=70_100)
    ),
    content_type=st.sampled_from(
        ["application/json", "application/json;charset=utf-8", "text/csv"]
    ),
    when=st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2099, 1, 1)),
)
def test_authorization_equals_the_sdk_signer_on_generated_requests(
    method: str,
    segments: list[str],
    query: dict[str, str | int | bool | list[str]],
    extra: dict[str, str],
    token: str | None,
    body: bytes,
    content_type: str,
    when: datetime,
) -> None:
    path = "/" + "/".join(segments)
    encoded_path = quote(path, safe="/")
    headers = {**{f"x-gen-{k}": v for k, v in extra.items()}, **base_headers(content_type)}
    if token is not None:
        headers["X-Security-Token"] = token
    now = when.replace(microsecond=0, tzinfo=UTC)
    pairs = list(query.items())
    expected_auth, _ = sdk_sign(method, encoded_path, pairs, headers, body, now)
    url = our_url(encoded_path, pairs)
    added = sign_request(method, url, headers, body, access_key=AK, secret_key=SK, now=now)
    assert added["Authorization"] == expected_auth
    all_headers = {**headers, **added}
    assert verify_request(method, url, all_headers, body, secrets={AK: SK}, now=now) == AK


def signed_request() -> tuple[str, dict[str, str]]:
    url = f"https://{HOST}/v2.0/{PID}/batches?queue_name=q1"
    headers = base_headers()
    headers.update(sign_request("GET", url, headers, b"", access_key=AK, secret_key=SK, now=NOW))
    return url, headers


def test_verify_accepts_a_request_signed_with_a_known_key() -> None:
    url, headers = signed_request()
    assert verify_request("GET", url, headers, b"", secrets={AK: SK}, now=NOW) == AK


def test_verify_accepts_header_names_in_any_case() -> None:
    url, headers = signed_request()
    lowered = {k.lower(): v for k, v in headers.items()}
    assert verify_request("GET", url, lowered, b"", secrets={AK: SK}, now=NOW) == AK


Headers = dict[str, str]


def without(name: str) -> Callable[[str, Headers], tuple[str, Headers]]:
    return lambda url, h: (url, {k: v for k, v in h.items() if k != name})


def replacing(name: str, value: str) -> Callable[[str, Headers], tuple[str, Headers]]:
    return lambda url, h: (url, {**h, name: value})


def editing_auth(old: str, new: str) -> Callable[[str, Headers], tuple[str, Headers]]:
    return lambda url, h: (url, {**h, "Authorization": h["Authorization"].replace(old, new)})


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (without("Authorization"), "missing Authorization"),
        (replacing("Authorization", "Bearer x"), "not SDK-HMAC-SHA256"),
        (without("X-Sdk-Date"), "missing X-Sdk-Date"),
        (replacing("X-Sdk-Date", "2025-01-02T03:04:05Z"), "not in the format"),
        (without("X-Project-Id"), "missing from the request: x-project-id"),
        (replacing("X-Project-Id", "other"), "mismatch"),
        (lambda url, h: (url + "&size=1", h), "mismatch"),
        (lambda url, h: (url.replace("batches", "batchez"), h), "mismatch"),
        (editing_auth(AK, "NOSUCHAK"), "unknown access key"),
        (editing_auth(";x-sdk-date", ""), "must include x-sdk-date"),
        (editing_auth("Signature=", "Signature=0"), "not SDK-HMAC-SHA256"),
    ],
)
def test_verify_rejects_tampered_requests_saying_why(
    mutate: Callable[[str, Headers], tuple[str, Headers]], message: str
) -> None:
    url, headers = signed_request()
    bad_url, bad_headers = mutate(url, headers)
    with pytest.raises(SignatureError, match=message):
        verify_request("GET", bad_url, bad_headers, b"", secrets={AK: SK}, now=NOW)


def test_verify_rejects_a_body_other_than_the_one_signed() -> None:
    url = f"https://{HOST}/v2.0/{PID}/batches"
    headers = base_headers()
    headers.update(
        sign_request("POST", url, headers, TV2_BODY, access_key=AK, secret_key=SK, now=NOW)
    )
    with pytest.raises(SignatureError, match="mismatch"):
        verify_request("POST", url, headers, TV2_BODY + b" ", secrets={AK: SK}, now=NOW)


def test_verify_rejects_the_wrong_secret_key() -> None:
    url, headers = signed_request()
    with pytest.raises(SignatureError, match="mismatch"):
        verify_request("GET", url, headers, b"", secrets={AK: SK + "x"}, now=NOW)


@pytest.mark.parametrize("skew", [timedelta(minutes=16), -timedelta(minutes=16)])
def test_verify_rejects_dates_outside_the_fifteen_minute_window(skew: timedelta) -> None:
    url, headers = signed_request()
    with pytest.raises(SignatureError, match="more than 900s"):
        verify_request("GET", url, headers, b"", secrets={AK: SK}, now=NOW + skew)


def test_verify_accepts_dates_just_inside_the_window() -> None:
    url, headers = signed_request()
    later = NOW + timedelta(minutes=14, seconds=59)
    assert verify_request("GET", url, headers, b"", secrets={AK: SK}, now=later) == AK


def test_a_naive_now_is_taken_as_utc() -> None:
    url, headers = signed_request()
    naive = NOW.replace(tzinfo=None)
    again = sign_request("GET", url, base_headers(), b"", access_key=AK, secret_key=SK, now=naive)
    assert again["Authorization"] == headers["Authorization"]


def test_a_host_header_is_derived_from_the_url_when_missing() -> None:
    url = f"https://{HOST}:8443/x"
    added = sign_request("GET", url, {}, b"", access_key=AK, secret_key=SK, now=NOW)
    assert added["Host"] == f"{HOST}:8443"
    assert verify_request("GET", url, added, b"", secrets={AK: SK}, now=NOW) == AK


def test_signing_without_a_secret_key_is_refused() -> None:
    with pytest.raises(SignatureError, match="secret key"):
        sign_request("GET", "https://h/", {}, b"", access_key=AK, secret_key="", now=NOW)


def test_canonical_uri_always_ends_with_a_slash_and_encodes_each_segment() -> None:
    assert canonical_uri("") == "/"
    assert canonical_uri("/a b/%7Ec/") == "/a%20b/~c/"


def test_encode_query_sorts_hyphen_before_underscore_like_the_gateway() -> None:
    assert encode_query([("job_name", "a"), ("job-id", "b"), ("flag", True)]) == (
        "flag=true&job-id=b&job_name=a"
    )


def test_signature_is_the_hex_hmac_sha256_of_the_string_to_sign() -> None:
    # The well-known HMAC-SHA256 example (key "key", the quick brown fox).
    fox = "The quick brown fox jumps over the lazy dog"
    assert signature(fox, "key") == (
        "f7bc83f430538424b13298e6aa6fb143ef4d59a14946175997479dbc2d1a3cd8"
    )
