"""Replies a DLI client must survive: error bodies sent with 200, missing fields, nulls, odd
states, foreign ids, huge and slow bodies (issue 10, items 4, 12 and 13), then a fuzz of every
endpoint's reply: the client returns a valid model or raises a ``DliError``, nothing else.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dli_operator.dli.auth import AkSkAuth, Credentials
from dli_operator.dli.client import DliClient
from dli_operator.dli.errors import DliError, DliProtocolError, DliTimeoutError
from dli_operator.dli.models import (
    BatchCancelResponse,
    BatchJob,
    BatchJobRequest,
    BatchList,
    BatchLog,
    BatchStateResponse,
    is_batch_id,
    is_known_state,
    is_terminal,
)
from dli_operator.dli.retries import NO_RETRIES, RetryPolicy, Verdict, verdict

PID = "0123456789abcdef0123456789abcdef"
BATCH = "0a324461-d9d9-45da-a52a-3b3c7a3d809e"
OTHER = "1b324461-d9d9-45da-a52a-3b3c7a3d809e"
JOB: dict[str, Any] = {"id": BATCH, "state": "running", "appId": "app", "log": [], "queue": "q1"}
ERROR_BODY = {"error_code": "DLI.0999", "error_msg": "Internal error"}
REQUEST = BatchJobRequest(file="obs://b/app.jar", class_name="org.example.Main", queue="q1")

Reply = Callable[[httpx.Request], httpx.Response]


def client_for(reply: Reply, **options: Any) -> DliClient:
    settings_: dict[str, Any] = {
        "project_id": PID,
        "auth": AkSkAuth(Credentials("AK", "SK")),
        "endpoint": "https://dli.example.com",
        "transport": httpx.MockTransport(reply),
        "retry_policy": NO_RETRIES,
    }
    return DliClient(**(settings_ | options))


def answering(body: object, status: int = 200) -> Reply:
    return lambda request: httpx.Response(status, json=body)


@pytest.fixture
async def make() -> AsyncIterator[Callable[..., DliClient]]:
    clients: list[DliClient] = []

    def build(reply: Reply, **options: Any) -> DliClient:
        clients.append(client_for(reply, **options))
        return clients[-1]

    yield build
    for client in clients:
        await client.aclose()


@pytest.mark.parametrize(
    "body",
    [
        ERROR_BODY,
        {"errorCode": "DLI.0999", "errorMsg": "Internal error"},
        {"error_code": "DLI.0999", "error_msg": "x", "total": 0, "sessions": []},
        {"total": 3},
        {"sessions": []},
        {},
        [],
        None,
        {"total": True, "sessions": []},
        {"total": 1, "sessions": "none"},
    ],
    ids=[
        "error-body", "camel-error-body", "error-code-beside-an-empty-page", "no-sessions",
        "no-total", "empty-object", "array", "null", "boolean-total", "sessions-not-a-list",
    ],
)  # fmt: skip
async def test_a_list_reply_that_says_nothing_is_a_retryable_protocol_error_never_an_empty_page(
    make: Callable[..., DliClient], body: object
) -> None:
    client = make(answering(body))
    with pytest.raises(DliProtocolError) as caught:
        await client.list_batches(job_name="job-1")
    assert verdict(caught.value) is Verdict.RETRY
    with pytest.raises(DliProtocolError):
        async for _ in client.iter_batches(job_name="job-1"):
            pass


async def test_a_list_reply_with_an_error_body_is_retried_until_a_real_page_comes(
    make: Callable[..., DliClient],
) -> None:
    replies = [ERROR_BODY, {"total": 1, "sessions": [JOB]}]
    sleeps: list[float] = []

    async def sleep(seconds: float) -> None:
        sleeps.append(seconds)

    client = make(
        lambda request: httpx.Response(200, json=replies.pop(0)),
        retry_policy=RetryPolicy(max_attempts=3),
        sleep=sleep,
    )
    page = await client.list_batches()
    assert [job.id for job in page.sessions] == [BATCH]
    assert len(sleeps) == 1


async def test_nulls_inside_one_session_neither_fail_nor_empty_the_page(
    make: Callable[..., DliClient],
) -> None:
    odd = {**JOB, "id": OTHER, "log": None, "appId": None, "create_time": "soon", "queue": 7}
    nulls = dict.fromkeys(("name", "owner", "proxyUser", "kind", "sc_type", "duration"))
    page_body = {"total": 2, "sessions": [{**JOB, **nulls}, odd]}
    page = await make(answering(page_body)).list_batches()
    assert [job.id for job in page.sessions] == [BATCH, OTHER]
    assert page.sessions[1].log == []
    assert page.sessions[1].create_time is None
    assert page.sessions[1].queue is None
    assert page.incomplete == []


async def test_a_session_without_a_readable_state_is_kept_aside_never_dropped_silently(
    make: Callable[..., DliClient],
) -> None:
    """A poll skips it (and GETs its job); a look-up by name must not read it as "absent"."""
    blank = {"id": OTHER, "name": "job-1-abcd1234-1", "state": None}
    foreign = {"id": "17", "name": "job-1-abcd1234-1", "state": "running"}
    body = {"total": 3, "sessions": [JOB, blank, foreign]}
    client = make(answering(body))
    page = await client.list_batches()
    assert [job.id for job in page.sessions] == [BATCH]
    assert [(s.id, s.name) for s in page.incomplete] == [
        (OTHER, "job-1-abcd1234-1"),
        (None, "job-1-abcd1234-1"),
    ]
    polled = [job.id async for job in client.iter_batches(queue_name="q1")]
    assert polled == [BATCH]
    with pytest.raises(DliProtocolError, match="may be one of them"):
        async for _ in client.iter_batches(job_name="job-1-abcd1234-1"):
            pass


async def test_unreadable_sessions_still_count_when_paging(make: Callable[..., DliClient]) -> None:
    """The next page starts after every entry DLI sent, readable or not."""
    offsets: list[str] = []

    def reply(request: httpx.Request) -> httpx.Response:
        offsets.append(request.url.params["from"])
        if request.url.params["from"] == "0":
            return httpx.Response(200, json={"total": 3, "sessions": [JOB, {"id": OTHER}]})
        return httpx.Response(200, json={"total": 3, "sessions": [{**JOB, "id": OTHER}]})

    jobs = [job.id async for job in make(reply).iter_batches(size=2)]
    assert (jobs, offsets) == ([BATCH, OTHER], ["0", "2"])


async def test_a_list_that_never_ends_is_a_protocol_error(
    make: Callable[..., DliClient], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A server ignoring ``from`` and claiming a huge total would page forever."""
    monkeypatch.setattr("dli_operator.dli.client.MAX_PAGES", 5)
    client = make(answering({"total": 10**9, "sessions": [JOB, {**JOB, "id": OTHER}]}))
    seen: list[BatchJob] = []
    with pytest.raises(DliProtocolError, match="after 5 pages"):
        await collect(client.iter_batches(size=2), seen)
    assert len(seen) == 10


async def collect(jobs: AsyncIterator[BatchJob], into: list[BatchJob]) -> None:
    async for job in jobs:
        into.append(job)


@pytest.mark.parametrize("raw", ["killed", "error", "KILLED", "shutting_down"])
async def test_an_undocumented_state_is_kept_raw_for_the_driver_to_end(
    make: Callable[..., DliClient], raw: str
) -> None:
    job = await make(answering({**JOB, "state": raw})).get_batch(BATCH)
    assert str(job.state) == raw
    assert not is_known_state(job.state)
    assert not is_terminal(job.state)
    assert is_known_state("Success")


@pytest.mark.parametrize(
    ("call", "body"),
    [
        ("get", {**JOB, "id": "1234"}),
        ("get", {**JOB, "id": "../../other"}),
        ("get", {**JOB, "id": None}),
        ("get", {**JOB, "state": None}),
        ("get", {**JOB, "state": ""}),
        ("get", {**JOB, "state": 3}),
        ("get", {**JOB, "id": OTHER}),
        ("state", {"id": BATCH, "state": None}),
        ("state", {"id": "x", "state": "running"}),
        ("state", {"id": OTHER, "state": "running"}),
        ("state", ERROR_BODY),
        ("create", {**JOB, "id": 42}),
        ("create", {"state": "starting"}),
        ("create", ERROR_BODY),
        ("cancel", ERROR_BODY),
        ("log", {"id": BATCH, "total": 0}),
        ("log", {"id": BATCH, "log": None}),
        ("log", ERROR_BODY),
    ],
)
async def test_every_endpoint_refuses_a_reply_that_does_not_say_what_it_must(
    make: Callable[..., DliClient], call: str, body: object
) -> None:
    requests: list[httpx.Request] = []

    def reply(request: httpx.Request) -> httpx.Response:
        requests.append(request)
        return httpx.Response(200, json=body)

    client = make(reply, retry_policy=RetryPolicy(max_attempts=2), sleep=_no_sleep)
    with pytest.raises(DliProtocolError):
        await ENDPOINTS[call](client)
    # A create whose reply is unreadable may have created the job: never resent.
    assert len(requests) == (1 if call == "create" else 2)


async def test_a_body_over_the_cap_is_not_read(make: Callable[..., DliClient]) -> None:
    big = {**JOB, "log": ["x" * 1000] * 200}
    with pytest.raises(DliProtocolError, match="larger than 4096 bytes"):
        await make(answering(big), max_body_bytes=4096).get_batch(BATCH)

    def streamed(request: httpx.Request) -> httpx.Response:
        # No Content-Length: the cap must hold while reading, too.
        return httpx.Response(200, stream=Drip([b"{" + b" " * 3000] * 4, 0))

    with pytest.raises(DliProtocolError, match="larger than"):
        await make(streamed, max_body_bytes=4096).get_batch(BATCH)


async def test_a_slow_drip_reply_ends_at_the_request_deadline(
    make: Callable[..., DliClient],
) -> None:
    """Each chunk arrives well within the read timeout; the whole reply never does."""
    body = json.dumps(JOB).encode()

    def dripping(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, stream=Drip([body[i : i + 1] for i in range(len(body))], 0.05))

    client = make(dripping, deadline_seconds=0.5, timeout_seconds=30.0)
    started = asyncio.get_running_loop().time()
    with pytest.raises(DliTimeoutError, match=r"within 0\.5s"):
        await client.get_batch(BATCH)
    assert asyncio.get_running_loop().time() - started < 5
    quick_body = Drip([body], 0)
    quick = make(lambda request: httpx.Response(200, stream=quick_body), deadline_seconds=0.5)
    assert (await quick.get_batch(BATCH)).id == BATCH


class Drip(httpx.AsyncByteStream):
    """A reply body sent in chunks, ``pause`` seconds apart."""

    def __init__(self, chunks: list[bytes], pause: float) -> None:
        self.chunks, self.pause = chunks, pause

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for chunk in self.chunks:
            await asyncio.sleep(self.pause)
            yield chunk


async def _no_sleep(seconds: float) -> None:
    return None


ENDPOINTS: dict[str, Callable[[DliClient], Awaitable[object]]] = {
    "create": lambda c: c.create_batch(REQUEST),
    "list": lambda c: c.list_batches(),
    "get": lambda c: c.get_batch(BATCH),
    "state": lambda c: c.get_batch_state(BATCH),
    "cancel": lambda c: c.cancel_batch(BATCH),
    "log": lambda c: c.get_batch_log(BATCH),
}
MODELS: dict[str, type] = {
    "create": BatchJob,
    "list": BatchList,
    "get": BatchJob,
    "state": BatchStateResponse,
    "cancel": BatchCancelResponse,
    "log": BatchLog,
}
VALID: dict[str, dict[str, Any]] = {
    "create": {**JOB, "state": "starting"},
    "list": {"from": 0, "total": 2, "sessions": [JOB, {**JOB, "id": OTHER, "log": ["a"]}]},
    "get": {**JOB, "req_body": "{}", "create_time": 1, "duration": 5},
    "state": {"id": BATCH, "state": "success"},
    "cancel": {"msg": "deleted"},
    "log": {"id": BATCH, "from": 0, "total": 2, "log": ["a", "b"]},
}

# Any JSON value, with big strings and numbers among the leaves.
LEAVES = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False)
    | st.text(max_size=20)
    | st.sampled_from(["running", "dead", "killed", "", BATCH, "x" * 100_000])
)
JSON = st.recursive(
    LEAVES,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)


def _mutated(body: dict[str, Any], data: st.DataObject) -> object:
    """The valid body with some keys removed, nulled or replaced, in it or in its sessions."""
    out = json.loads(json.dumps(body))
    targets = [out, *[s for s in out.get("sessions", []) if isinstance(s, dict)]]
    for target in targets:
        for key in list(target):
            change = data.draw(st.sampled_from(["keep", "keep", "drop", "null", "replace"]))
            if change == "drop":
                del target[key]
            elif change == "null":
                target[key] = None
            elif change == "replace":
                target[key] = data.draw(JSON)
    if data.draw(st.booleans()):
        out.update(
            data.draw(st.dictionaries(st.sampled_from(["error_code", "sessions", "x"]), JSON))
        )
    return out


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(call=st.sampled_from(sorted(ENDPOINTS)), data=st.data())
def test_fuzz_every_reply_gives_a_valid_model_or_a_dli_error(
    call: str, data: st.DataObject
) -> None:
    kind = data.draw(st.sampled_from(["mutated", "json", "bytes"]))
    status = data.draw(st.sampled_from([200, 200, 200, 201, 202, 400, 404, 500]))
    if kind == "bytes":
        content = data.draw(st.binary(max_size=200))
    else:
        body = _mutated(VALID[call], data) if kind == "mutated" else data.draw(JSON)
        content = json.dumps(body).encode()
    result = asyncio.run(_call(call, status, content))
    if isinstance(result, DliError):
        return
    assert isinstance(result, MODELS[call])
    _assert_valid(result)
    # Nothing that said "error" was read as an answer, and a page lost none of its entries.
    raw = json.loads(content)
    assert not (isinstance(raw, dict) and raw.get("error_code"))
    if isinstance(result, BatchList):
        assert len(result.sessions) + len(result.incomplete) == len(raw["sessions"])


async def _call(call: str, status: int, content: bytes) -> object:
    reply = httpx.Response(status, content=content, headers={"Content-Type": "application/json"})
    client = client_for(lambda request: reply)
    try:
        return await ENDPOINTS[call](client)
    except DliError as err:  # anything else fails the test
        return err
    finally:
        await client.aclose()


def _assert_valid(model: object) -> None:
    jobs: list[BatchJob] = []
    if isinstance(model, BatchList):
        jobs = model.sessions
        assert model.total >= 0
    elif isinstance(model, BatchJob):
        jobs = [model]
    elif isinstance(model, BatchStateResponse):
        assert is_batch_id(model.id)
        assert str(model.state).strip()
    elif isinstance(model, BatchLog):
        assert all(isinstance(line, str) for line in model.log)
    for job in jobs:
        assert is_batch_id(job.id)
        assert str(job.state).strip()
        assert all(isinstance(line, str) for line in job.log)
