"""The emulator as a server: real sockets, the CLI, ``--state-file`` restarts, and scale."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click
import httpx
import pytest
from starlette.applications import Starlette

from dli_operator.cli import emulator as emulator_command
from dli_operator.dli.auth import AkSkAuth, Credentials
from dli_operator.emulator import listing
from dli_operator.emulator.app import create_app
from dli_operator.emulator.clock import FakeClock
from dli_operator.emulator.config import EmulatorConfig, SparkConfig, parse_slots
from dli_operator.emulator.state import Job, Store
from dli_operator.emulator.validation import parse_create

if TYPE_CHECKING:
    from conftest import LiveEmulator

JAR = {"file": "obs://bucket/app.jar", "className": "org.example.Main", "queue": "q1"}


def signed(config: EmulatorConfig) -> AkSkAuth:
    return AkSkAuth(Credentials(config.access_key, config.secret_key))


def test_a_hung_call_times_out_on_the_client_over_a_real_socket(
    live_emulator: LiveEmulator,
) -> None:
    httpx.post(
        live_emulator.url + "/_emulator/faults", json={"operation": "list", "action": "hang"}
    ).raise_for_status()
    with pytest.raises(httpx.ReadTimeout):
        httpx.get(live_emulator.batches_url, auth=signed(live_emulator.config), timeout=0.5)
    answered = httpx.get(live_emulator.batches_url, auth=signed(live_emulator.config))
    assert answered.status_code == 200


def test_a_dropped_connection_is_a_protocol_error_for_the_client(
    live_emulator: LiveEmulator,
) -> None:
    fault = {"operation": "create", "action": "drop", "when": "after"}
    httpx.post(live_emulator.url + "/_emulator/faults", json=fault).raise_for_status()
    with pytest.raises(httpx.RemoteProtocolError):
        httpx.post(live_emulator.batches_url, json=JAR, auth=signed(live_emulator.config))
    jobs = httpx.get(live_emulator.url + "/_emulator/jobs").json()
    assert jobs["total"] == 1, "the create went through before the connection dropped"


def test_every_reply_over_the_socket_carries_a_request_id(live_emulator: LiveEmulator) -> None:
    for response in (
        httpx.get(live_emulator.batches_url),
        httpx.get(live_emulator.url + "/nowhere"),
        httpx.get(live_emulator.batches_url, auth=signed(live_emulator.config)),
    ):
        assert len(response.headers["x-request-id"]) == 32


def test_the_cli_defaults_are_the_config_defaults() -> None:
    defaults = EmulatorConfig()
    params = {p.name: p.default for p in emulator_command.params if isinstance(p, click.Option)}
    assert params["host"] == defaults.host
    assert params["port"] == defaults.port
    assert params["project_id"] == defaults.project_id
    assert params["access_key"] == defaults.access_key
    assert params["secret_key"] == defaults.secret_key
    assert params["queues"] == ",".join(defaults.queues)
    assert params["run_seconds"] == defaults.run_seconds
    assert params["start_seconds"] == defaults.start_seconds
    spark = SparkConfig()
    assert (params["obs_root"], params["packages_dir"]) == (spark.obs_root, spark.packages_dir)
    assert (params["spark_workdir"], params["max_cores"]) == (spark.work_dir, spark.max_cores)
    assert parse_slots(params["queue_slots"]) == (spark.slots, spark.queue_slots)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _start_cli(*args: str) -> tuple[subprocess.Popen[str], str]:
    port = _free_port()
    cli = Path(sys.executable).with_name("dli-operator")
    process = subprocess.Popen(
        [str(cli), "emulator", "--port", str(port), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            httpx.get(url + "/_emulator/calls", timeout=1)
            return process, url
        except httpx.TransportError:
            time.sleep(0.1)
    process.kill()
    raise AssertionError(f"the emulator did not start: {process.communicate()[0]}")


def _stop(process: subprocess.Popen[str]) -> str:
    process.send_signal(signal.SIGINT)
    output, _ = process.communicate(timeout=20)
    return output


def test_the_cli_serves_prints_its_settings_and_keeps_jobs_in_the_state_file(
    tmp_path: Path,
) -> None:
    state_file = tmp_path / "jobs.jsonl"
    config = EmulatorConfig()
    process, url = _start_cli("--state-file", str(state_file), "--secret-key", "S3CRET-VALUE")
    try:
        auth = AkSkAuth(Credentials(config.access_key, "S3CRET-VALUE"))
        batches = f"{url}/v2.0/{config.project_id}/batches"
        created = httpx.post(batches, json=JAR, auth=auth).json()
    finally:
        output = _stop(process)
    assert f"listening on {url}" in output
    assert "S3CRET-VALUE" not in output
    assert "queues: default,q1" in output

    process, url = _start_cli("--state-file", str(state_file), "--secret-key", "S3CRET-VALUE")
    try:
        batches = f"{url}/v2.0/{config.project_id}/batches"
        shown = httpx.get(f"{batches}/{created['id']}", auth=auth)
    finally:
        _stop(process)
    assert shown.status_code == 200
    assert shown.json()["create_time"] == created["create_time"]


async def test_a_restarted_emulator_keeps_jobs_cancels_and_fail_first_counts(
    tmp_path: Path, fake_clock: FakeClock
) -> None:
    config = EmulatorConfig(tokens=frozenset({"t"}), state_file=tmp_path / "state.jsonl")
    conf = {"spark.dli.emulator.failFirst": "1", "spark.dli.emulator.key": "k"}

    async def call(app: Starlette, method: str, path: str, body: Any = None) -> httpx.Response:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://emu") as client:
            prefix = f"/v2.0/{config.project_id}/batches"
            return await client.request(
                method, prefix + path, json=body, headers={"X-Auth-Token": "t"}
            )

    first = create_app(config, clock=fake_clock)
    failing = (await call(first, "POST", "", {**JAR, "conf": conf})).json()
    cancelled = (await call(first, "POST", "", JAR)).json()
    await call(first, "DELETE", f"/{cancelled['id']}")
    first.state.emulator.close()

    second = create_app(config, clock=fake_clock)
    later = (await call(second, "POST", "", {**JAR, "conf": conf})).json()
    fake_clock.advance(60)
    states = {
        key: (await call(second, "GET", f"/{job['id']}/state")).json()["state"]
        for key, job in {"failing": failing, "cancelled": cancelled, "later": later}.items()
    }
    assert states == {"failing": "dead", "cancelled": "dead", "later": "success"}
    lines = [json.loads(line) for line in config.state_file.read_text().splitlines()]  # type: ignore[union-attr]
    assert [line["op"] for line in lines] == ["create", "create", "stop", "create"]
    second.state.emulator.close()


def test_listing_running_jobs_among_ten_thousand_looks_only_at_unfinished_ones(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    clock = FakeClock()
    store = Store(EmulatorConfig(), clock)
    quick = parse_create(
        json.dumps({**JAR, "conf": {"spark.dli.emulator.runSeconds": "1"}}).encode(), ["q1"]
    )
    slow = parse_create(
        json.dumps({**JAR, "conf": {"spark.dli.emulator.runSeconds": "900"}}).encode(), ["q1"]
    )
    for index in range(10_000):
        store.create(slow if index % 50 == 0 else quick)
    clock.advance(30)
    looked_at = 0
    real_state = Job.state

    def counting(job: Job, now_ms: int) -> str:
        nonlocal looked_at
        looked_at += 1
        return real_state(job, now_ms)

    monkeypatch.setattr(Job, "state", counting)
    total, page = listing.select(
        store, listing.parse_query({"queue_name": "q1", "state": "running"})
    )
    assert (total, len(page)) == (200, 100)
    assert looked_at <= 200
    total, page = listing.select(store, listing.parse_query({"queue_name": "q1", "from": "9950"}))
    assert (total, len(page)) == (10_000, 50)
