"""``DliClient``: the operator's only way to DLI's v2.0 batch API (dli_02_0124..0129).

Async, one pooled ``httpx.AsyncClient``. Every call goes through ``_call``, the one send
path: it retries according to ``retries.py``, turns every failure into a ``DliError``
(httpx exceptions never leave this package), and reports each attempt as
``(operation, outcome, latency_seconds)`` to the optional ``on_call`` observer, which is
where the operator's metrics plug in. It knows nothing of Kubernetes or kopf.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from datetime import datetime
from types import TracebackType
from typing import Self
from urllib.parse import quote

import httpx

from dli_operator import __version__
from dli_operator.dli.auth import secret_values
from dli_operator.dli.errors import (
    DliError,
    DliNotFound,
    DliProtocolError,
    DliTimeoutError,
    mask_credentials,
)
from dli_operator.dli.models import (
    BatchCancelResponse,
    BatchJob,
    BatchJobRequest,
    BatchList,
    BatchLog,
    BatchState,
    BatchStateResponse,
    IncompleteSession,
    is_batch_id,
)
from dli_operator.dli.responses import M, decode_response, transport_error
from dli_operator.dli.retries import RetryPolicy
from dli_operator.dli.signing import QueryValue, encode_query

logger = logging.getLogger(__name__)

Observer = Callable[[str, str, float], None]
"""Called after every attempt with (operation, outcome, latency in seconds)."""

# dli_region.py in huaweicloudsdkdli: every region is under .com except this one.
_EU_REGIONS = frozenset({"eu-west-101"})
# dli_02_0125: the page size the SDK documents as default; Terraform pages by 100 too.
DEFAULT_PAGE_SIZE = 100
# A list that never ends (a server ignoring ``from`` with a huge ``total``) must not hold a
# step forever: 1,000 pages of 100 is ten times the largest project we were told of.
MAX_PAGES = 1000
# No DLI reply comes near this: a page of 1,000 sessions with their req_body is about 3 MiB.
# A bigger body is a broken or hostile server, and reading it would only exhaust memory.
MAX_BODY_BYTES = 8 * 1024 * 1024
# httpx's timeouts are per read: a server dripping one byte every 29 s never trips a 30 s
# read timeout. This bounds one attempt from sending to the last byte (issue 10, item 13).
DEFAULT_DEADLINE_SECONDS = 90.0


def endpoint_for_region(region: str) -> str:
    """The public DLI endpoint of a region."""
    suffix = "myhuaweicloud.eu" if region in _EU_REGIONS else "myhuaweicloud.com"
    return f"https://dli.{region}.{suffix}"


def checked_endpoint(endpoint: str, *, allow_insecure: bool = False) -> str:
    """Validate an endpoint URL: https, or plain http only when explicitly allowed."""
    url = httpx.URL(endpoint)
    if url.scheme not in ("https", "http") or not url.host:
        raise ValueError(f"DLI endpoint {endpoint!r} is not an http(s) URL with a host")
    if url.scheme == "http" and not allow_insecure:
        raise ValueError(f"DLI endpoint {endpoint!r} is plain http; allow it explicitly (emulator)")
    return str(url).rstrip("/")


def _checked_batch_id(batch_id: str, operation: str) -> str:
    """A UUID, or the "no such job" DLI would answer (checked here: it also keeps paths clean).

    Raised as ``DliNotFound`` rather than ``ValueError``: no DLI job can have such an id, and a
    caller cancelling it must be able to carry on (a ValueError crash-looped the job and
    blocked its deletion: issue 10, item 12). Nothing is sent.
    """
    if not is_batch_id(batch_id):
        raise DliNotFound(
            status=400,
            error_code="DLI.0002",
            error_msg=f"{batch_id[:80]!r} is not a DLI batch id (a UUID); checked before sending",
            operation=operation,
        )
    return batch_id


def _same_id(asked: str, answered: str, operation: str) -> None:
    # A reply about another job (a confused proxy, a cache) must not be taken for this one.
    if asked.lower() != answered.lower():
        raise DliProtocolError(
            f"DLI {operation}: asked about batch {asked}, the reply is about {answered}",
            operation=operation,
        )


def _unreadable(entries: Sequence[IncompleteSession], *, lookup: bool) -> None:
    described = "; ".join(f"{e.id or e.name or '?'}: {e.reason}" for e in entries[:3])
    if lookup:
        raise DliProtocolError(
            f"DLI list_batches: {len(entries)} entries without a readable id or state "
            f"({described}); the job looked up may be one of them",
            operation="list_batches",
        )
    logger.warning("DLI list: skipped %d unreadable entries: %s", len(entries), described)


def _millis(value: int | datetime | None) -> int | None:
    return int(value.timestamp() * 1000) if isinstance(value, datetime) else value


class DliClient:
    """Typed async calls to the DLI batch API of one project."""

    def __init__(
        self,
        *,
        project_id: str,
        auth: httpx.Auth,
        region: str | None = None,
        endpoint: str | None = None,
        allow_insecure: bool = False,
        timeout_seconds: float = 30.0,
        connect_timeout_seconds: float = 10.0,
        deadline_seconds: float = DEFAULT_DEADLINE_SECONDS,
        max_body_bytes: int = MAX_BODY_BYTES,
        max_connections: int = 20,
        max_keepalive_connections: int = 10,
        retry_policy: RetryPolicy | None = None,
        on_call: Observer | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        if endpoint is None:
            if region is None:
                raise ValueError("give the DLI region or an explicit endpoint")
            endpoint = endpoint_for_region(region)
        self.endpoint = checked_endpoint(endpoint, allow_insecure=allow_insecure)
        self.project_id = project_id
        self._base = f"/v2.0/{quote(project_id, safe='')}/batches"
        self._policy = retry_policy or RetryPolicy()
        self._on_call = on_call
        self._sleep = sleep
        self._monotonic = monotonic
        self._deadline = deadline_seconds
        self._max_body = max_body_bytes
        self._http = httpx.AsyncClient(
            base_url=self.endpoint,
            auth=auth,
            # The SDK sends both on every call, GET and DELETE included (dli-api.md §1).
            headers={
                "Content-Type": "application/json",
                "X-Project-Id": project_id,
                "User-Agent": f"dli-operator/{__version__}",
            },
            timeout=httpx.Timeout(timeout_seconds, connect=connect_timeout_seconds),
            limits=httpx.Limits(
                max_connections=max_connections, max_keepalive_connections=max_keepalive_connections
            ),
            transport=transport,
            follow_redirects=False,
            trust_env=False,
        )

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the connection pool."""
        await self._http.aclose()

    async def create_batch(self, request: BatchJobRequest) -> BatchJob:
        """Submit a batch job (dli_02_0124). Resent only if it provably never left."""
        body = request.to_wire()
        return await self._call("create_batch", "POST", self._base, BatchJob, body=body)

    async def get_batch(self, batch_id: str) -> BatchJob:
        """A job's details (dli_02_0126)."""
        path = f"{self._base}/{_checked_batch_id(batch_id, 'get_batch')}"
        return await self._call("get_batch", "GET", path, BatchJob, about=batch_id)

    async def get_batch_state(self, batch_id: str) -> BatchStateResponse:
        """Just a job's state, the cheapest poll (dli_02_0127)."""
        path = f"{self._base}/{_checked_batch_id(batch_id, 'get_batch_state')}/state"
        return await self._call("get_batch_state", "GET", path, BatchStateResponse, about=batch_id)

    async def cancel_batch(self, batch_id: str) -> BatchCancelResponse:
        """Cancel a starting, running or recovering job (dli_02_0129)."""
        path = f"{self._base}/{_checked_batch_id(batch_id, 'cancel_batch')}"
        return await self._call("cancel_batch", "DELETE", path, BatchCancelResponse)

    async def list_batches(
        self,
        *,
        queue_name: str | None = None,
        cluster_name: str | None = None,
        job_name: str | None = None,
        job_id: str | None = None,
        state: BatchState | str | None = None,
        owner: str | None = None,
        start: int | datetime | None = None,
        end: int | datetime | None = None,
        order: str | None = None,
        from_: int | None = None,
        size: int | None = None,
    ) -> BatchList:
        """One page of jobs (dli_02_0125); ``start``/``end`` are ms epochs or datetimes."""
        # Wire names as documented: note ``job-id`` with a hyphen.
        query = {
            "queue_name": queue_name,
            "cluster_name": cluster_name,
            "job_name": job_name,
            "job-id": job_id,
            "state": state,
            "owner": owner,
            "start": _millis(start),
            "end": _millis(end),
            "order": order,
            "from": from_,
            "size": size,
        }
        pairs = [(k, v) for k, v in query.items() if v is not None]
        return await self._call("list_batches", "GET", self._base, BatchList, query=pairs)

    async def iter_batches(
        self,
        *,
        queue_name: str | None = None,
        cluster_name: str | None = None,
        job_name: str | None = None,
        job_id: str | None = None,
        state: BatchState | str | None = None,
        owner: str | None = None,
        start: int | datetime | None = None,
        end: int | datetime | None = None,
        order: str | None = None,
        size: int = DEFAULT_PAGE_SIZE,
        pace: Callable[[], Awaitable[object]] | None = None,
    ) -> AsyncIterator[BatchJob]:
        """Every job matching the filters, page by page (``from``/``size``).

        ``pace`` is awaited before each page, e.g. a caller's rate limiter. An entry without a
        readable id or state is not yielded: a poll falls back to a GET for its job. But when
        the list is a look-up by ``job_name`` or ``job_id``, such an entry may be the very job
        looked for, and "not found" would lead to a second POST: it raises ``DliProtocolError``
        (retried) instead (issue 10, item 4).
        """
        offset = 0
        for _ in range(MAX_PAGES):
            if pace is not None:
                await pace()
            page = await self.list_batches(
                queue_name=queue_name,
                cluster_name=cluster_name,
                job_name=job_name,
                job_id=job_id,
                state=state,
                owner=owner,
                start=start,
                end=end,
                order=order,
                from_=offset,
                size=size,
            )
            if page.incomplete:
                _unreadable(page.incomplete, lookup=job_name is not None or job_id is not None)
            for job in page.sessions:
                yield job
            received = len(page.sessions) + len(page.incomplete)
            offset += received
            if received < size or offset >= page.total:
                return
        raise DliProtocolError(
            f"DLI list_batches: still more after {MAX_PAGES} pages of {size} (total "
            f"{page.total}); the server may be ignoring 'from'",
            operation="list_batches",
        )

    async def get_batch_log(
        self,
        batch_id: str,
        *,
        from_: int | None = None,
        size: int | None = None,
        type_: str | None = None,
        index: int | None = None,
    ) -> BatchLog:
        """Driver log lines (dli_02_0128); ``index`` picks the attempt of a recovered job."""
        path = f"{self._base}/{_checked_batch_id(batch_id, 'get_batch_log')}/log"
        query = {"from": from_, "size": size, "type": type_, "index": index}
        pairs = [(k, v) for k, v in query.items() if v is not None]
        return await self._call("get_batch_log", "GET", path, BatchLog, query=pairs)

    async def _call(
        self,
        operation: str,
        method: str,
        path: str,
        model: type[M],
        *,
        query: Sequence[tuple[str, QueryValue]] = (),
        body: bytes | None = None,
        about: str | None = None,
    ) -> M:
        """The one send path: attempt, observe, retry per policy, raise ``DliError``."""
        # Sent exactly as signed: the canonical query, so httpx has nothing to re-encode.
        url = f"{path}?{encode_query(query)}" if query else path
        idempotent = method != "POST"
        started = self._monotonic()
        attempt = 0
        while True:
            attempt += 1
            attempt_started = self._monotonic()
            try:
                result = await self._attempt(operation, method, url, model, body)
                if about is not None:
                    _same_id(about, str(getattr(result, "id", "")), operation)
            except DliError as err:
                mask_credentials(err, secret_values(self._http.auth))
                self._observe(operation, err.outcome, self._monotonic() - attempt_started)
                elapsed = self._monotonic() - started
                delay = self._policy.next_delay(
                    attempt, err, idempotent=idempotent, elapsed_seconds=elapsed
                )
                if delay is None:
                    raise
                logger.warning(
                    "DLI %s %s attempt %d/%d failed; will retry in %.1fs: %r",
                    method, operation, attempt, self._policy.max_attempts, delay, err,
                )  # fmt: skip
                await self._sleep(delay)
            else:
                self._observe(operation, "success", self._monotonic() - attempt_started)
                return result

    async def _attempt(
        self, operation: str, method: str, url: str, model: type[M], body: bytes | None
    ) -> M:
        try:
            async with asyncio.timeout(self._deadline):
                async with self._http.stream(method, url, content=body) as response:
                    content = await self._read_capped(response, operation)
        except TimeoutError:
            raise DliTimeoutError(
                f"DLI {operation}: no complete reply within {self._deadline:g}s "
                "(the request may have reached DLI)",
                operation=operation,
            ) from None
        except (httpx.HTTPError, httpx.StreamError, httpx.InvalidURL) as exc:
            raise transport_error(exc, operation) from exc
        return decode_response(response, content, model, operation)

    async def _read_capped(self, response: httpx.Response, operation: str) -> bytes:
        """The body, or a ``DliProtocolError`` as soon as it exceeds ``max_body_bytes``."""
        declared = response.headers.get("Content-Length", "")
        if declared.isdigit() and int(declared) > self._max_body:
            raise self._too_big(response, operation)
        chunks: list[bytes] = []
        size = 0
        async for chunk in response.aiter_bytes():
            size += len(chunk)
            if size > self._max_body:
                raise self._too_big(response, operation)
            chunks.append(chunk)
        return b"".join(chunks)

    def _too_big(self, response: httpx.Response, operation: str) -> DliProtocolError:
        return DliProtocolError(
            f"DLI {operation}: HTTP {response.status_code} body larger than "
            f"{self._max_body} bytes; not read",
            operation=operation,
        )

    def _observe(self, operation: str, outcome: str, latency: float) -> None:
        if self._on_call is None:
            return
        try:
            self._on_call(operation, outcome, latency)
        except Exception:
            # A broken metrics hook must not fail a DLI call.
            logger.exception("DLI call observer failed for %s/%s", operation, outcome)
