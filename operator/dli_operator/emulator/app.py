"""The emulator as a Starlette app: DLI's six batch endpoints and the ``/_emulator/`` control API.

``create_app(config, clock=...)`` is the whole public surface: tests mount it in-process with
``httpx.ASGITransport`` (and a ``FakeClock``), the CLI serves it with uvicorn. Paths, field names
and errors follow the DLI v2.0 batch pages: create dli_02_0124, list dli_02_0125, details
dli_02_0126, state dli_02_0127, log dli_02_0128, cancel dli_02_0129.
"""

from __future__ import annotations

import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from dli_operator.emulator import control, iam, listing, views
from dli_operator.emulator.clock import Clock
from dli_operator.emulator.config import EmulatorConfig
from dli_operator.emulator.core import Emulator
from dli_operator.emulator.gateway import RequestIdMiddleware, request_id
from dli_operator.emulator.replies import NO_SUCH_API, ApiError, bad_parameter, error_response
from dli_operator.emulator.replies import json_response as reply
from dli_operator.emulator.state import Job
from dli_operator.emulator.validation import parse_create

BATCHES = "/v2.0/{project_id}/batches"
BATCH = BATCHES + "/{batch_id}"
# "batch_id must match" this pattern (dli_02_0126).
BATCH_ID = re.compile(
    r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"
)

Endpoint = Callable[[Emulator, Request, bytes], Awaitable[Response]]


def create_app(config: EmulatorConfig | None = None, *, clock: Clock = time.time) -> Starlette:
    """A fresh emulator; ``app.state.emulator`` is its ``Emulator`` (store, faults, counters)."""
    emulator = Emulator(config or EmulatorConfig(), clock)

    @asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        async with emulator.background():
            yield
        emulator.close()

    app = Starlette(
        routes=[*_dli_routes(emulator), *iam.routes(emulator.identity), *control.routes(emulator)],
        middleware=[Middleware(RequestIdMiddleware)],
        exception_handlers={HTTPException: _no_such_api},
        lifespan=lifespan,
    )
    app.router.redirect_slashes = False
    app.state.emulator = emulator
    return app


async def _no_such_api(request: Request, _: Exception) -> Response:
    """Any path or method DLI does not have is the gateway's 404 ``APIG.0101``."""
    return error_response(ApiError(404, "APIG.0101", NO_SUCH_API), request_id(request))


def _dli_routes(emulator: Emulator) -> list[BaseRoute]:
    table: list[tuple[str, str, str, Endpoint]] = [
        ("POST", BATCHES, "create", _create),
        ("GET", BATCHES, "list", _list),
        ("GET", BATCH, "show", _show),
        ("GET", BATCH + "/state", "state", _state),
        ("GET", BATCH + "/log", "log", _log),
        ("DELETE", BATCH, "cancel", _cancel),
    ]
    routes: list[BaseRoute] = []
    for method, path, operation, endpoint in table:
        bound = _bind(emulator, operation, endpoint)
        # The SDK signs the path with a trailing "/" but sends it without; accept both.
        routes += [Route(p, bound, methods=[method]) for p in (path, path + "/")]
    return routes


def _bind(
    emulator: Emulator, operation: str, endpoint: Endpoint
) -> Callable[..., Awaitable[Response]]:
    async def handle(request: Request, body: bytes) -> Response:
        return await endpoint(emulator, request, body)

    async def route(request: Request) -> Response:
        return await emulator.serve(operation, request, handle)

    return route


def _job(emulator: Emulator, request: Request) -> Job:
    batch_id = request.path_params["batch_id"]
    if not BATCH_ID.match(batch_id):
        raise bad_parameter(f"Parameter batch_id {batch_id} is not a valid batch id")
    return emulator.store.get(batch_id)


async def _create(emulator: Emulator, request: Request, body: bytes) -> Response:
    """dli_02_0124: validate, plan the job, answer ``starting``."""
    job = emulator.store.create(parse_create(body, emulator.config.queues))
    return reply(views.created(job, job.create_ms, emulator.config.owner))


async def _list(emulator: Emulator, request: Request, body: bytes) -> Response:
    """dli_02_0125: filters, order and ``from``/``size`` paging."""
    query = listing.parse_query(request.query_params)
    total, page = listing.select(emulator.store, query)
    now_ms, owner = emulator.store.now_ms(), emulator.config.owner
    sessions = [views.session(job, now_ms, owner) for job in page]
    return reply(views.listed(query.offset, total, sessions, now_ms))


async def _show(emulator: Emulator, request: Request, body: bytes) -> Response:
    """dli_02_0126."""
    job = _job(emulator, request)
    return reply(views.details(job, emulator.store.now_ms(), emulator.config.owner))


async def _state(emulator: Emulator, request: Request, body: bytes) -> Response:
    """dli_02_0127."""
    return reply(views.state(_job(emulator, request), emulator.store.now_ms()))


async def _log(emulator: Emulator, request: Request, body: bytes) -> Response:
    """dli_02_0128: ``type`` is only ``driver``; ``index`` picks the attempt."""
    job = _job(emulator, request)
    params = request.query_params
    if params.get("type", "driver") != "driver":
        raise bad_parameter("Parameter type must be driver")
    numbers = {key: listing.integer(params, key) for key in ("from", "size", "index")}
    return reply(
        views.log(
            job,
            emulator.store.now_ms(),
            attempt=numbers["index"] or 0,
            offset=numbers["from"],
            size=numbers["size"],
        )
    )


async def _cancel(emulator: Emulator, request: Request, body: bytes) -> Response:
    """dli_02_0129: a job not yet finished becomes ``dead``; a finished one cannot be cancelled."""
    job = _job(emulator, request)
    emulator.store.stop(job.id, "cancelled by the user")
    return reply({"msg": "deleted"})
