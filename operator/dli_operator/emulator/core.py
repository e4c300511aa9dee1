"""One emulated DLI project: the store, the fault script, the call counters, and the path every
DLI call takes through them (count, throttle, scripted fault, authenticate, handle).

Kept apart from the routes so the order of those steps is written down once, here.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from dli_operator.emulator.clock import Clock
from dli_operator.emulator.config import EmulatorConfig
from dli_operator.emulator.faults import Faults, Rule
from dli_operator.emulator.gateway import DropConnection, authenticate, request_id
from dli_operator.emulator.iam import Identity
from dli_operator.emulator.journal import Journal
from dli_operator.emulator.replies import THROTTLED, ApiError, error_response, json_response
from dli_operator.emulator.sparkstore import SparkStore
from dli_operator.emulator.state import Store

Handler = Callable[[Request, bytes], Awaitable[Response]]

logger = logging.getLogger(__name__)

# APIG's throttling limit as reported in its message (dli-api.md section 3); informative only.
THROTTLE_LIMIT = 1000


class Emulator:
    """The state behind one app: jobs, faults and what the tests asked of it."""

    def __init__(self, config: EmulatorConfig, clock: Clock) -> None:
        self.config, self.clock = config, clock
        journal = Journal(config.state_file) if config.state_file else None
        backend = SparkStore if config.spark else Store
        self.store: Store = backend(config, clock, journal)
        self.faults = Faults()
        self.identity = Identity(clock)
        self.calls: Counter[str] = Counter()
        self.outcomes: dict[str, Counter[str]] = {}
        self._release: asyncio.Event | None = None
        self._late: set[asyncio.Task[None]] = set()
        self._resets = 0

    def reset(self) -> None:
        """Forget jobs, counters and faults; release every hung call."""
        self.store.reset()
        self.faults.clear()
        self.identity.reset()
        self.calls.clear()
        self.outcomes.clear()
        if self._release is not None:
            self._release.set()
            self._release = None
        self._resets += 1
        for task in self._late:
            task.cancel()

    def close(self) -> None:
        if isinstance(self.store, SparkStore):
            self.store.shutdown()
        if self.store.journal is not None:
            self.store.journal.close()

    @asynccontextmanager
    async def background(self) -> AsyncIterator[None]:
        """While the app serves: the spark back end follows its processes (the scripted one
        computes states on read and needs nothing)."""
        if not isinstance(self.store, SparkStore):
            yield
            return
        task = asyncio.create_task(self.store.supervise())
        try:
            yield
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    async def serve(self, operation: str, request: Request, handler: Handler) -> Response:
        """Run one DLI call through the gateway and the fault script."""
        self.calls[operation] += 1
        try:
            response = await self._serve(operation, request, handler)
        except ApiError as error:
            response = error_response(error, request_id(request))
        outcome = "dropped" if isinstance(response, DropConnection) else str(response.status_code)
        self.outcomes.setdefault(operation, Counter())[outcome] += 1
        return response

    async def _serve(self, operation: str, request: Request, handler: Handler) -> Response:
        throttle = self.faults.throttled(operation)
        if throttle is not None:
            headers = {}
            if throttle.retry_after is not None:
                headers["Retry-After"] = f"{throttle.retry_after:g}"
            raise ApiError(429, "APIG.0308", THROTTLED.format(limit=THROTTLE_LIMIT), headers)
        body = await request.body()
        rule = self.faults.take(operation, "before")
        if rule is not None and rule.action == "late":
            return await self._create_late(rule, request, body, handler)
        if rule is not None and (early := await self._apply(rule, request)) is not None:
            return early
        project_id = request.path_params["project_id"]
        authenticate(request, body, self.config, self.clock(), project_id, self.identity)
        response = await handler(request, body)
        rule = self.faults.take(operation, "after")
        if rule is not None and rule.action in ("mangle", "drip"):
            return _reshaped(rule, response)
        if rule is not None and (late := await self._apply(rule, request)) is not None:
            return late
        return response

    async def _create_late(
        self, rule: Rule, request: Request, body: bytes, handler: Handler
    ) -> Response:
        """The slow back end: no answer; the create happens ``seconds`` after the client left.

        This is how a POST that timed out still creates its job (issue 10, item 3): whoever
        posts again right after a timeout makes a second job.
        """
        project_id = request.path_params["project_id"]
        authenticate(request, body, self.config, self.clock(), project_id, self.identity)
        resets = self._resets
        await self._hang(request)
        if resets != self._resets:  # released by a reset: that create is forgotten too
            return error_response(ApiError(503, "APIG.0201", "Backend timeout"), "")
        task = asyncio.ensure_future(self._carry_out_later(rule.seconds, request, body, handler))
        self._late.add(task)
        task.add_done_callback(self._late.discard)
        return error_response(ApiError(503, "APIG.0201", "Backend timeout"), request_id(request))

    @staticmethod
    async def _carry_out_later(
        seconds: float, request: Request, body: bytes, handler: Handler
    ) -> None:
        await asyncio.sleep(seconds)
        try:
            await handler(request, body)
        except ApiError as error:  # an invalid request fails late too: nothing is created
            logger.info("late create refused: %s", error)

    async def _apply(self, rule: Rule, request: Request) -> Response | None:
        """Carry out a rule; ``None`` means "go on with the real reply" (a plain delay)."""
        if rule.action == "drop":
            return DropConnection()
        if rule.action == "hang":
            await self._hang(request)
            return error_response(ApiError(503, "APIG.0201", "Backend unavailable"), "")
        if rule.action == "delay":
            await asyncio.sleep(rule.seconds)
            if rule.status is None:
                return None
        status, body, headers = rule.answer()
        return json_response(body, status=status, headers=headers)

    async def _hang(self, request: Request) -> None:
        """Wait until the client gives up (disconnects) or the emulator is reset."""
        if self._release is None:
            self._release = asyncio.Event()
        released = asyncio.ensure_future(self._release.wait())
        disconnected = asyncio.ensure_future(_disconnect(request))
        _, pending = await asyncio.wait(
            {released, disconnected}, return_when=asyncio.FIRST_COMPLETED
        )
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)


def _reshaped(rule: Rule, response: Response) -> Response:
    """The real reply with fields removed or nulled (``mangle``) or sent slowly (``drip``)."""
    body = bytes(response.body)
    headers = {k: v for k, v in response.headers.items() if k.lower() != "content-length"}
    if rule.action == "mangle":
        with contextlib.suppress(ValueError):  # not JSON: nothing to mangle
            body = json.dumps(rule.mangled(json.loads(body)), separators=(",", ":")).encode()
        return Response(body, status_code=response.status_code, headers=headers)
    return StreamingResponse(
        _drip(body, rule.chunk_bytes, rule.seconds),
        status_code=response.status_code,
        headers=headers,
    )


async def _drip(body: bytes, size: int, pause: float) -> AsyncIterator[bytes]:
    for start in range(0, len(body), size):
        if start:
            await asyncio.sleep(pause)
        yield body[start : start + size]


async def _disconnect(request: Request) -> None:
    while (await request.receive())["type"] != "http.disconnect":
        pass
