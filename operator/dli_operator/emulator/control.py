"""The ``/_emulator/`` control API: what tests use to look inside the emulator and script it.

Never under the DLI paths and never counted as a DLI call. Open by default (the emulator listens
on loopback); with ``--control-token`` every control call needs ``Authorization: Bearer <token>``,
so a shared emulator (the dev overlay's Service) cannot be scripted by anyone who can reach it.
Shapes are documented in docs/emulator.md.
"""

from __future__ import annotations

import hmac
import json
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from dli_operator.emulator.core import Emulator
from dli_operator.emulator.faults import FaultSpecError
from dli_operator.emulator.replies import ApiError
from dli_operator.emulator.replies import json_response as reply
from dli_operator.emulator.state import Job

PREFIX = "/_emulator"
Endpoint = Callable[[Request], Awaitable[Response]]


def routes(emulator: Emulator) -> list[BaseRoute]:
    """The control routes, bound to one emulator."""

    async def jobs(request: Request) -> Response:
        now_ms = emulator.store.now_ms()
        listed = [describe(job, now_ms) for job in emulator.store.all()]
        return reply({"total": len(listed), "jobs": listed})

    async def job(request: Request) -> Response:
        batch_id = request.path_params["batch_id"]
        found = emulator.store.jobs.get(batch_id)
        if found is None:
            return _error(404, f"no job {batch_id}")
        return reply(describe(found, emulator.store.now_ms()))

    async def calls(request: Request) -> Response:
        outcomes = {op: dict(counts) for op, counts in emulator.outcomes.items()}
        return reply({"calls": dict(emulator.calls), "outcomes": outcomes})

    async def faults(request: Request) -> Response:
        if request.method == "DELETE":
            emulator.faults.clear()
        elif request.method == "POST":
            return await _add_faults(emulator, request)
        return reply({"faults": emulator.faults.describe()})

    async def reset(request: Request) -> Response:
        emulator.reset()
        return reply({"reset": True})

    async def iam(request: Request) -> Response:
        if request.method == "POST":
            try:
                emulator.identity.configure(json.loads(await request.body() or b"{}"))
            except (ValueError, TypeError, AttributeError) as error:
                return _error(400, f"bad IAM settings: {error}")
        return reply(emulator.identity.describe())

    table = [
        ("/jobs", jobs, ["GET"]),
        ("/jobs/{batch_id}", job, ["GET"]),
        ("/calls", calls, ["GET"]),
        ("/faults", faults, ["GET", "POST", "DELETE"]),
        ("/reset", reset, ["POST"]),
        ("/iam", iam, ["GET", "POST"]),
    ]
    guard = _guarded(emulator.config.control_token)
    return [
        Route(PREFIX + path, guard(handler), methods=methods) for path, handler, methods in table
    ]


def _guarded(token: str | None) -> Callable[[Endpoint], Endpoint]:
    """Require ``Authorization: Bearer <token>`` on a control route when a token is set."""

    def guard(handler: Endpoint) -> Endpoint:
        if token is None:
            return handler

        async def checked(request: Request) -> Response:
            given = request.headers.get("authorization", "")
            if not hmac.compare_digest(given.encode(), f"Bearer {token}".encode()):
                return _error(401, "the control API needs Authorization: Bearer <control token>")
            return await handler(request)

        return checked

    return guard


def describe(job: Job, now_ms: int) -> dict[str, Any]:
    """A job as the control API shows it: the request, the state now, and the history so far."""
    history = [
        {"state": state, "at": begin, "attempt": attempt}
        for begin, state, attempt in job.segments
        if begin <= now_ms
    ]
    return {
        "id": job.id,
        "name": job.name,
        "queue": job.queue,
        "state": job.state(now_ms),
        "createTime": job.create_ms,
        "request": job.req_body,
        "history": history,
        "plannedEnd": {"state": job.segments[-1][1], "at": job.ends_ms},
        "stopReason": job.stop_reason,
    }


async def _add_faults(emulator: Emulator, request: Request) -> Response:
    """Add one rule or a list of rules; ``kill`` rules act at once and report the job."""
    try:
        payload = json.loads(await request.body() or b"null")
    except ValueError:
        return _error(400, "the body is not JSON")
    specs = payload if isinstance(payload, list) else [payload]
    killed: list[dict[str, Any]] = []
    for spec in specs:
        if not isinstance(spec, dict):
            return _error(400, "a fault is a JSON object")
        try:
            if spec.get("action") == "kill":
                killed.append(_kill(emulator, spec))
            else:
                emulator.faults.add(spec)
        except (FaultSpecError, ApiError) as error:
            return _error(400, str(error))
    return reply({"faults": emulator.faults.describe(), "killed": killed})


def _kill(emulator: Emulator, spec: dict[str, Any]) -> dict[str, Any]:
    """The job dies now, as if its driver crashed; it does not recover."""
    batch_id = str(spec.get("batchId", ""))
    emulator.store.stop(batch_id, "killed by an emulator fault")
    job = emulator.store.get(batch_id)
    return describe(job, emulator.store.now_ms())


def _error(status: int, message: str) -> Response:
    return reply({"error": message}, status=status)
