"""DliClient against httpx.MockTransport: wire format, signing, errors, retries, observer."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

import httpx
import pytest
from huaweicloudsdkcore.auth.credentials import BasicCredentials
from huaweicloudsdkcore.sdk_request import SdkRequest

from dli_operator.dli.auth import AkSkAuth, Credentials, sent_url
from dli_operator.dli.client import DliClient, checked_endpoint, endpoint_for_region
from dli_operator.dli.errors import (
    DliAuthError,
    DliClientError,
    DliConnectError,
    DliError,
    DliNotFound,
    DliProtocolError,
    DliServerError,
    DliThrottled,
    DliTimeoutError,
    DliTransportError,
)
from dli_operator.dli.models import BatchJobRequest, BatchState
from dli_operator.dli.retries import NO_RETRIES, RetryPolicy
from dli_operator.dli.signing import verify_request

AK = "HPUAEXAMPLEAK0000001"
SK = "exampleSecretKey0123456789abcdefghijklmn"
PID = "0123456789abcdef0123456789abcdef"
HOST = "dli.cn-north-4.myhuaweicloud.com"
ENDPOINT = f"https://{HOST}"
NOW = datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC)
BATCH = "0a324461-d9d9-45da-a52a-3b3c7a3d809e"
JOB = {"id": BATCH, "state": "starting", "appId": "", "log": [], "queue": "q1"}
REQUEST = BatchJobRequest(file="obs://b/app.jar", class_name="org.example.Main", queue="q1")


Handler = Callable[[httpx.Request], httpx.Response]


@dataclass
class Recorder:
    """What the client did: requests seen, sleeps asked for, observer reports."""

    requests: list[httpx.Request] = field(default_factory=list)
    sleeps: list[float] = field(default_factory=list)
    calls: list[tuple[str, str]] = field(default_factory=list)

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)

    def observe(self, operation: str, outcome: str, latency: float) -> None:
        assert latency >= 0
        self.calls.append((operation, outcome))


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


ClientFactory = Callable[..., DliClient]


@pytest.fixture
async def make_client(recorder: Recorder) -> AsyncIterator[ClientFactory]:
    clients: list[DliClient] = []

    def make(handler: Handler, **overrides: object) -> DliClient:
        def recording(request: httpx.Request) -> httpx.Response:
            recorder.requests.append(request)
            return handler(request)

        options: dict[str, object] = {
            "project_id": PID,
            "auth": AkSkAuth(Credentials(AK, SK), clock=lambda: NOW),
            "endpoint": ENDPOINT,
            "transport": httpx.MockTransport(recording),
            "retry_policy": RetryPolicy(max_attempts=3, base_delay_seconds=0.5),
            "on_call": recorder.observe,
            "sleep": recorder.sleep,
        }
        options.update(overrides)
        client = DliClient(**options)  # type: ignore[arg-type]
        clients.append(client)
        return client

    yield make
    for client in clients:
        await client.aclose()


def ok(body: object, status: int = 200) -> httpx.Response:
    return httpx.Response(status, json=body, headers={"X-Request-Id": "rid-1"})


def error(status: int, code: str, msg: str = "m", **headers: str) -> httpx.Response:
    body = {"error_code": code, "error_msg": msg}
    return httpx.Response(status, json=body, headers={"X-Request-Id": "rid-2", **headers})


def script(*replies: httpx.Response | Exception) -> Callable[[httpx.Request], httpx.Response]:
    """A handler that answers with the given replies in turn (raising exceptions)."""
    queue = list(replies)

    def handler(request: httpx.Request) -> httpx.Response:
        reply = queue.pop(0)
        if isinstance(reply, Exception):
            raise reply
        return reply

    return handler


def verified(request: httpx.Request) -> str:
    """The access key, if the request carries a valid signature (as the emulator checks)."""
    return verify_request(
        request.method, sent_url(request), request.headers, request.content,
        secrets={AK: SK}, now=NOW,
    )  # fmt: skip


async def test_create_posts_the_documented_body_signed_and_parses_the_job(
    make_client: ClientFactory, recorder: Recorder
) -> None:
    client = make_client(script(ok(JOB)))
    job = await client.create_batch(REQUEST)
    sent = recorder.requests[0]
    assert (sent.method, sent.url.path) == ("POST", f"/v2.0/{PID}/batches")
    assert sent.content == REQUEST.to_wire()
    assert sent.headers["X-Project-Id"] == PID
    assert sent.headers["Content-Type"] == "application/json"
    assert verified(sent) == AK
    assert (job.id, job.state) == (BATCH, BatchState.STARTING)


async def test_the_signature_on_the_wire_equals_the_official_sdk_signature(
    make_client: ClientFactory, recorder: Recorder
) -> None:
    client = make_client(script(ok({"from": 0, "total": 0, "sessions": []})))
    await client.list_batches(queue_name="q1", job_name="my job:1", job_id=BATCH, size=10)
    sent = recorder.requests[0]
    headers = {"Content-Type": "application/json", "X-Sdk-Date": "20250102T030405Z"}
    sdk = SdkRequest(
        method="GET", schema="https", host=HOST, resource_path=f"/v2.0/{PID}/batches",
        query_params=[("queue_name", "q1"), ("job_name", "my job:1"), ("job-id", BATCH),
                      ("size", 10)],
        header_params=headers, body="",
    )  # fmt: skip
    signed = BasicCredentials(AK, SK, PID).sign_request(sdk)
    assert sent.url.raw_path.decode() == signed.uri
    assert sent.headers["Authorization"] == signed.header_params["Authorization"]


async def test_temporary_credentials_send_and_sign_the_security_token(
    make_client: ClientFactory, recorder: Recorder
) -> None:
    auth = AkSkAuth(Credentials(AK, SK, "STS+TOKEN/="), clock=lambda: NOW)
    client = make_client(script(ok({"id": BATCH, "state": "running"})), auth=auth)
    await client.get_batch_state(BATCH)
    sent = recorder.requests[0]
    assert sent.headers["X-Security-Token"] == "STS+TOKEN/="
    assert "x-security-token" in sent.headers["Authorization"]
    assert verified(sent) == AK


async def test_list_sends_every_filter_with_its_wire_name_and_the_canonical_query(
    make_client: ClientFactory, recorder: Recorder
) -> None:
    client = make_client(script(ok({"from": 5, "total": 9, "sessions": [JOB]})))
    page = await client.list_batches(
        queue_name="q1", cluster_name="c", job_name="n", job_id=BATCH, state=BatchState.RUNNING,
        owner="o", start=datetime(2025, 1, 1, tzinfo=UTC), end=1735776000000,
        order="CREATE_TIME_DESC", from_=5, size=20,
    )  # fmt: skip
    sent = recorder.requests[0]
    assert sent.url.query.decode() == (
        "cluster_name=c&end=1735776000000&from=5&job-id=" + BATCH + "&job_name=n&order="
        "CREATE_TIME_DESC&owner=o&queue_name=q1&size=20&start=1735689600000&state=running"
    )
    assert (page.from_, page.total, page.sessions[0].id) == (5, 9, BATCH)


async def test_iter_batches_walks_every_page(
    make_client: ClientFactory, recorder: Recorder
) -> None:
    jobs = [{**JOB, "id": f"{i:08d}-0000-0000-0000-000000000000"} for i in range(5)]
    pages = [ok({"from": f, "total": 5, "sessions": jobs[f : f + 2]}) for f in (0, 2, 4)]
    client = make_client(script(*pages))
    seen = [job.id async for job in client.iter_batches(queue_name="q1", size=2)]
    assert seen == [j["id"] for j in jobs]
    queries = [r.url.params for r in recorder.requests]
    assert [(q["from"], q["size"]) for q in queries] == [("0", "2"), ("2", "2"), ("4", "2")]


async def test_iter_batches_awaits_its_pace_before_every_page(
    make_client: ClientFactory, recorder: Recorder
) -> None:
    jobs = [{**JOB, "id": f"{i:08d}-0000-0000-0000-000000000000"} for i in range(3)]
    pages = [ok({"from": f, "total": 3, "sessions": jobs[f : f + 2]}) for f in (0, 2)]
    client = make_client(script(*pages))
    paced: list[int] = []

    async def pace() -> None:
        paced.append(len(recorder.requests))

    seen = [job.id async for job in client.iter_batches(size=2, pace=pace)]
    assert len(seen) == 3
    assert paced == [0, 1]  # before the first request and before the second


async def test_get_state_cancel_details_and_log_use_their_documented_paths(
    make_client: ClientFactory, recorder: Recorder
) -> None:
    client = make_client(script(
        ok({"id": BATCH, "state": "Success"}), ok({"msg": "deleted"}),
        ok({**JOB, "req_body": "{}", "appId": None}),
        ok({"id": BATCH, "from": 0, "total": 2, "log": ["a", "b"]}),
    ))  # fmt: skip
    assert (await client.get_batch_state(BATCH)).state is BatchState.SUCCESS
    assert (await client.cancel_batch(BATCH)).msg == "deleted"
    assert (await client.get_batch(BATCH)).app_id is None
    assert (await client.get_batch_log(BATCH, from_=0, size=2, type_="driver", index=1)).log == [
        "a", "b"
    ]  # fmt: skip
    sent = [(r.method, r.url.raw_path.decode()) for r in recorder.requests]
    base = f"/v2.0/{PID}/batches/{BATCH}"
    assert sent == [
        ("GET", f"{base}/state"), ("DELETE", base), ("GET", base),
        ("GET", f"{base}/log?from=0&index=1&size=2&type=driver"),
    ]  # fmt: skip


async def test_a_batch_id_that_is_not_a_uuid_is_refused_before_sending(
    make_client: ClientFactory, recorder: Recorder
) -> None:
    client = make_client(script())
    # Not a ValueError (that crash-looped a job and blocked its deletion): "no such job".
    with pytest.raises(DliNotFound, match="not a DLI batch id"):
        await client.get_batch("../../queues")
    with pytest.raises(DliNotFound, match="not a DLI batch id"):
        await client.cancel_batch("not-a-uuid")
    assert recorder.requests == []


async def test_server_errors_on_a_get_are_retried_with_backoff_then_succeed(
    make_client: ClientFactory, recorder: Recorder
) -> None:
    client = make_client(script(error(503, "503"), error(400, "DLI.0999"), ok(JOB)))
    assert (await client.get_batch(BATCH)).id == BATCH
    assert len(recorder.sleeps) == 2
    assert all(0 <= s <= 1.0 for s in recorder.sleeps)
    assert recorder.calls == [
        ("get_batch", "server_error"), ("get_batch", "server_error"), ("get_batch", "success")
    ]  # fmt: skip


async def test_throttling_waits_as_long_as_retry_after_says(
    make_client: ClientFactory, recorder: Recorder
) -> None:
    client = make_client(script(error(429, "APIG.0308", **{"Retry-After": "3"}), ok(JOB)))
    await client.get_batch(BATCH)
    assert recorder.sleeps == [3.0]
    assert recorder.calls[0] == ("get_batch", "throttled")


async def test_attempts_are_bounded_and_the_last_error_is_raised(
    make_client: ClientFactory, recorder: Recorder
) -> None:
    html = b"<html><head><title>502 Bad Gateway</title></head><body>nginx</body></html>"
    page = httpx.Response(502, content=html, headers={"Content-Type": "text/html"})
    client = make_client(script(page, page, page, ok(JOB)))
    with pytest.raises(DliServerError) as caught:
        await client.get_batch(BATCH)
    assert caught.value.status == 502
    assert "'502 Bad Gateway'" in str(caught.value)
    assert len(recorder.requests) == 3


@pytest.mark.parametrize(
    ("reply", "cls", "code"),
    [
        (error(400, "DLI.0001", "bad conf"), DliClientError, "DLI.0001"),
        (error(400, "DLI.0002", "There is no queue named q1"), DliNotFound, "DLI.0002"),
        (error(401, "APIG.0301", "verify aksk signature fail"), DliAuthError, "APIG.0301"),
        (ok({"is_success": False, "error_code": "DLI.0007", "message": "no"}),
         DliClientError, "DLI.0007"),
    ],
)  # fmt: skip
async def test_terminal_errors_are_raised_at_once_with_code_message_and_request_id(
    make_client: ClientFactory, recorder: Recorder, reply: httpx.Response, cls: type, code: str
) -> None:
    client = make_client(script(reply))
    with pytest.raises(cls) as caught:
        await client.create_batch(REQUEST)
    assert caught.value.error_code == code
    assert caught.value.request_id in ("rid-1", "rid-2")
    assert caught.value.operation == "create_batch"
    assert recorder.sleeps == []


async def test_a_create_post_is_not_retried_after_a_read_timeout(
    make_client: ClientFactory, recorder: Recorder
) -> None:
    client = make_client(script(httpx.ReadTimeout("slow"), ok(JOB)))
    with pytest.raises(DliTimeoutError, match="may have reached DLI") as caught:
        await client.create_batch(REQUEST)
    assert isinstance(caught.value.__cause__, httpx.ReadTimeout)
    assert len(recorder.requests) == 1
    assert recorder.calls == [("create_batch", "timeout")]


@pytest.mark.parametrize("reply", [error(503, "503"), error(429, "APIG.0308")])
async def test_a_create_post_is_not_retried_after_an_error_response(
    make_client: ClientFactory, recorder: Recorder, reply: httpx.Response
) -> None:
    client = make_client(script(reply, ok(JOB)))
    with pytest.raises(DliError):
        await client.create_batch(REQUEST)
    assert len(recorder.requests) == 1


@pytest.mark.parametrize(
    "exc", [httpx.ConnectError("[Errno 111] Connection refused"), httpx.ConnectError("DNS")]
)
async def test_a_create_post_is_retried_when_the_connection_was_refused(
    make_client: ClientFactory, recorder: Recorder, exc: Exception
) -> None:
    client = make_client(script(exc, ok(JOB)))
    assert (await client.create_batch(REQUEST)).id == BATCH
    assert recorder.calls == [
        ("create_batch", "connect_error"), ("create_batch", "success")
    ]  # fmt: skip


async def test_transport_failures_become_dli_errors_never_httpx_ones(
    make_client: ClientFactory,
) -> None:
    broken = httpx.RemoteProtocolError("Server disconnected without sending a response.")
    client = make_client(script(broken, broken, broken))
    with pytest.raises(DliTransportError) as caught:
        await client.get_batch(BATCH)
    assert not isinstance(caught.value, DliConnectError | DliTimeoutError)
    assert isinstance(caught.value.__cause__, httpx.RemoteProtocolError)


@pytest.mark.parametrize(
    "reply",
    [
        httpx.Response(200, content=b"<html>captive portal</html>"),
        ok({"unexpected": "shape"}),
        ok(["a", "list"]),
    ],
)
async def test_an_unreadable_success_body_is_a_protocol_error(
    make_client: ClientFactory, reply: httpx.Response
) -> None:
    client = make_client(script(reply), retry_policy=NO_RETRIES)
    with pytest.raises(DliProtocolError, match="get_batch"):
        await client.get_batch(BATCH)


async def test_a_broken_observer_does_not_fail_the_call(make_client: ClientFactory) -> None:
    def explode(operation: str, outcome: str, latency: float) -> None:
        raise RuntimeError("metrics down")

    client = make_client(script(ok(JOB)), on_call=explode)
    assert (await client.get_batch(BATCH)).id == BATCH


async def test_the_client_closes_its_pool_as_a_context_manager(make_client: ClientFactory) -> None:
    async with make_client(script(ok(JOB))) as client:
        await client.get_batch(BATCH)
    assert client._http.is_closed


def test_a_throttled_error_carries_retry_after() -> None:
    err = DliThrottled(status=429, error_code="APIG.0308", error_msg="m", retry_after=2.0)
    assert err.retry_after == 2.0


@pytest.mark.parametrize(
    ("region", "endpoint"),
    [
        ("cn-north-4", "https://dli.cn-north-4.myhuaweicloud.com"),
        ("ap-southeast-1", "https://dli.ap-southeast-1.myhuaweicloud.com"),
        ("eu-west-101", "https://dli.eu-west-101.myhuaweicloud.eu"),
    ],
)
async def test_the_endpoint_follows_the_region(region: str, endpoint: str) -> None:
    assert endpoint_for_region(region) == endpoint
    async with DliClient(project_id=PID, auth=httpx.Auth(), region=region) as client:
        assert client.endpoint == endpoint


def test_plain_http_needs_an_explicit_opt_in() -> None:
    with pytest.raises(ValueError, match="plain http"):
        checked_endpoint("http://127.0.0.1:8099")
    assert (
        checked_endpoint("http://127.0.0.1:8099/", allow_insecure=True) == "http://127.0.0.1:8099"
    )


@pytest.mark.parametrize("endpoint", ["ftp://x", "https://", "dli.example.com"])
def test_an_endpoint_that_is_not_an_http_url_is_refused(endpoint: str) -> None:
    with pytest.raises(ValueError, match="not an http"):
        checked_endpoint(endpoint)


def test_a_region_or_an_endpoint_is_required() -> None:
    with pytest.raises(ValueError, match="region"):
        DliClient(project_id=PID, auth=httpx.Auth())


def test_the_body_sent_is_exactly_the_json_that_was_signed() -> None:
    assert json.loads(REQUEST.to_wire()) == {
        "file": "obs://b/app.jar", "className": "org.example.Main", "queue": "q1"
    }  # fmt: skip
