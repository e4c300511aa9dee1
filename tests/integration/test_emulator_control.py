"""The emulator's control API can require a bearer token (issue 11: a shared dev emulator)."""

from __future__ import annotations

import httpx

from dli_operator.emulator.app import create_app
from dli_operator.emulator.config import EmulatorConfig

TOKEN = "control-token-for-tests"


async def test_with_a_control_token_the_control_api_answers_only_its_bearer() -> None:
    app = create_app(EmulatorConfig(control_token=TOKEN))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://emulator") as http:
        assert (await http.get("/_emulator/jobs")).status_code == 401
        assert (await http.post("/_emulator/reset")).status_code == 401
        wrong = {"Authorization": "Bearer not-it"}
        assert (await http.get("/_emulator/calls", headers=wrong)).status_code == 401
        right = {"Authorization": f"Bearer {TOKEN}"}
        assert (await http.get("/_emulator/jobs", headers=right)).json()["total"] == 0
        assert (await http.post("/_emulator/faults", json={"operation": "list", "action": "respond",
                "status": 503}, headers=right)).status_code == 200  # fmt: skip


async def test_without_a_control_token_the_control_api_stays_open_on_loopback() -> None:
    transport = httpx.ASGITransport(app=create_app(EmulatorConfig()))
    async with httpx.AsyncClient(transport=transport, base_url="http://emulator") as http:
        assert (await http.get("/_emulator/jobs")).status_code == 200
