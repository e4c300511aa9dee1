"""Fixtures for the DLI emulator tests: the app in-process with a fake clock, and on a socket.

In-process tests talk to ``create_app(...)`` through ``httpx.ASGITransport`` and move time with
``fake_clock.advance(seconds)``; requests are signed with the client's own ``AkSkAuth`` at the
fake clock's time. ``live_emulator`` runs the same app under uvicorn on 127.0.0.1 for the tests
that need a real connection (the official SDK, hangs, dropped connections).
"""

from __future__ import annotations

import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime

import httpx
import pytest
from starlette.applications import Starlette

from dli_operator.dli.auth import AkSkAuth, Credentials
from dli_operator.emulator.__main__ import build_server
from dli_operator.emulator.app import create_app
from dli_operator.emulator.clock import FakeClock
from dli_operator.emulator.config import BACKENDS, EmulatorConfig, SparkConfig
from dli_operator.emulator.core import Emulator

EMULATOR_TOKEN = "emulator-test-token"
PREFIX = "/v2.0/{project_id}"


@pytest.fixture
def fake_clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def emulator_config() -> EmulatorConfig:
    return EmulatorConfig(tokens=frozenset({EMULATOR_TOKEN}), start_seconds=1.0, run_seconds=5.0)


@pytest.fixture
def emulator_app(emulator_config: EmulatorConfig, fake_clock: FakeClock) -> Starlette:
    return create_app(emulator_config, clock=fake_clock)


@pytest.fixture
def emulator(emulator_app: Starlette) -> Emulator:
    """The emulator behind the app: its store, fault script and call counters."""
    state: Emulator = emulator_app.state.emulator
    return state


def signing_auth(
    config: EmulatorConfig, clock: FakeClock, *, secret: str | None = None
) -> AkSkAuth:
    """AK/SK signing at the fake clock's time, optionally with a wrong secret key."""
    creds = Credentials(config.access_key, secret if secret is not None else config.secret_key)
    return AkSkAuth(creds, clock=lambda: datetime.fromtimestamp(clock(), tz=UTC))


SignAs = Callable[..., AkSkAuth]


@pytest.fixture
def sign_as() -> SignAs:
    """``sign_as(config, clock, secret=...)``: an ``httpx.Auth`` signing as someone else."""
    return signing_auth


@pytest.fixture
def emulator_token() -> str:
    """An ``X-Auth-Token`` the emulator under test accepts."""
    return EMULATOR_TOKEN


@pytest.fixture
async def dli(
    emulator_app: Starlette, emulator_config: EmulatorConfig, fake_clock: FakeClock
) -> AsyncIterator[httpx.AsyncClient]:
    """A signed client whose base URL is ``/v2.0/{project_id}``: call ``dli.get("/batches")``."""
    base = "http://dli.emulator" + PREFIX.format(project_id=emulator_config.project_id)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=emulator_app),
        base_url=base,
        headers={"Content-Type": "application/json", "X-Project-Id": emulator_config.project_id},
        auth=signing_auth(emulator_config, fake_clock),
    ) as client:
        yield client


@pytest.fixture
async def control(emulator_app: Starlette) -> AsyncIterator[httpx.AsyncClient]:
    """An unauthenticated client for the ``/_emulator/`` control API."""
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=emulator_app), base_url="http://dli.emulator/_emulator"
    ) as client:
        yield client


@dataclass(frozen=True)
class LiveEmulator:
    """An emulator served by uvicorn on 127.0.0.1."""

    config: EmulatorConfig
    url: str
    emulator: Emulator

    @property
    def batches_url(self) -> str:
        return self.url + PREFIX.format(project_id=self.config.project_id) + "/batches"


@pytest.fixture(scope="module")
def live_server() -> Iterator[LiveEmulator]:
    with serve(EmulatorConfig(port=0, tokens=frozenset({EMULATOR_TOKEN}))) as live:
        yield live


@pytest.fixture(scope="module", params=BACKENDS)
def backend_server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LiveEmulator]:
    """A live emulator of each back end. The spark one's queue ``q1`` has no slot, so a job
    there stays ``starting`` (a queue with no free resources) and needs no Java; ``default``
    has one slot and runs jobs for real."""
    config = EmulatorConfig(port=0, tokens=frozenset({EMULATOR_TOKEN}))
    if request.param == "spark":
        root = tmp_path_factory.mktemp("spark")
        spark = SparkConfig(root / "obs", root / "packages", root / "work", 1, (("q1", 0),))
        config = replace(config, spark=spark)
    with serve(config) as live:
        yield live


@contextmanager
def serve(config: EmulatorConfig) -> Iterator[LiveEmulator]:
    """The app for ``config`` under uvicorn on a free port of 127.0.0.1, in a thread."""
    server = build_server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline, "the emulator did not start"
        time.sleep(0.02)
    port = server.servers[0].sockets[0].getsockname()[1]
    app = server.config.loaded_app
    yield LiveEmulator(replace(config, port=port), f"http://127.0.0.1:{port}", _emulator_of(app))
    server.should_exit = True
    thread.join(timeout=10)


def _emulator_of(app: object) -> Emulator:
    # uvicorn wraps the app in its own middleware; the Starlette app is one level down.
    while not isinstance(app, Starlette):
        app = app.app  # type: ignore[attr-defined]
    state: Emulator = app.state.emulator
    return state


@pytest.fixture
def live_emulator(live_server: LiveEmulator) -> LiveEmulator:
    """The shared live emulator, reset (through its control API) before each test."""
    httpx.post(live_server.url + "/_emulator/reset").raise_for_status()
    return live_server
