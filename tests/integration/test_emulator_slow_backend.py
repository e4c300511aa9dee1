"""Faults that need a real connection: the late create and the slow-drip reply (issue 10).

The real ``DliClient`` talks to the emulator under uvicorn: the client's read timeout and its
total request deadline are what end these calls, as they would against a slow DLI back end.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest

from dli_operator.dli.auth import AkSkAuth, Credentials
from dli_operator.dli.client import DliClient
from dli_operator.dli.errors import DliTimeoutError
from dli_operator.dli.models import BatchJobRequest
from dli_operator.dli.retries import NO_RETRIES

from .conftest import LiveEmulator

REQUEST = BatchJobRequest(file="obs://b/app.jar", class_name="org.example.Main", queue="default")


@pytest.fixture
async def make_client(live_emulator: LiveEmulator) -> AsyncIterator[Callable[..., DliClient]]:
    clients: list[DliClient] = []
    config = live_emulator.config

    def make(**options: Any) -> DliClient:
        client = DliClient(
            project_id=config.project_id,
            auth=AkSkAuth(Credentials(config.access_key, config.secret_key)),
            endpoint=live_emulator.url,
            allow_insecure=True,
            retry_policy=NO_RETRIES,
            **options,
        )
        clients.append(client)
        return client

    yield make
    for client in clients:
        await client.aclose()


def fault(live: LiveEmulator, **spec: Any) -> None:
    httpx.post(live.url + "/_emulator/faults", json=spec).raise_for_status()


def reset(live: LiveEmulator) -> None:
    httpx.post(live.url + "/_emulator/reset").raise_for_status()


def created(live: LiveEmulator) -> int:
    return int(httpx.get(live.url + "/_emulator/jobs").json()["total"])


async def test_a_late_create_lands_after_the_client_gave_up(
    live_emulator: LiveEmulator, make_client: Callable[..., DliClient]
) -> None:
    fault(live_emulator, operation="create", action="late", seconds=1.0)
    client = make_client(timeout_seconds=0.3)
    with pytest.raises(DliTimeoutError, match="may have reached DLI"):
        await client.create_batch(REQUEST)
    assert created(live_emulator) == 0, "nothing yet: the back end is slow"
    deadline = time.monotonic() + 10
    while created(live_emulator) == 0:
        assert time.monotonic() < deadline, "the late create never happened"
        await asyncio.sleep(0.1)
    assert created(live_emulator) == 1
    assert (await client.create_batch(REQUEST)).state == "starting", "the fault was used up"


async def test_a_reset_forgets_a_late_create_still_waiting(
    live_emulator: LiveEmulator, make_client: Callable[..., DliClient]
) -> None:
    fault(live_emulator, operation="create", action="late", seconds=0.5)
    with pytest.raises(DliTimeoutError):
        await make_client(timeout_seconds=0.3).create_batch(REQUEST)
    reset(live_emulator)
    await asyncio.sleep(1.0)
    assert created(live_emulator) == 0


async def test_a_dripping_reply_ends_at_the_client_deadline_not_its_read_timeout(
    live_emulator: LiveEmulator, make_client: Callable[..., DliClient]
) -> None:
    fault(live_emulator, operation="list", action="drip", seconds=0.2, chunkBytes=2)
    client = make_client(timeout_seconds=5.0, deadline_seconds=1.0)
    started = time.monotonic()
    with pytest.raises(DliTimeoutError, match="no complete reply within 1s"):
        await client.list_batches()
    assert time.monotonic() - started < 4.0, "each chunk came within the read timeout"


async def test_a_dripping_reply_that_finishes_in_time_is_read_whole(
    live_emulator: LiveEmulator, make_client: Callable[..., DliClient]
) -> None:
    fault(live_emulator, operation="list", action="drip", seconds=0.01, chunkBytes=8)
    page = await make_client(deadline_seconds=30.0).list_batches()
    assert (page.total, page.sessions) == (0, [])
