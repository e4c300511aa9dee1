"""Fault scripts and the ``/_emulator/`` control API, in-process."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx
import pytest

from dli_operator.emulator.clock import FakeClock
from dli_operator.emulator.core import Emulator
from dli_operator.emulator.gateway import ConnectionDropped

JAR = {"file": "obs://bucket/app.jar", "className": "org.example.Main", "queue": "q1"}


async def script(control: httpx.AsyncClient, *faults: dict[str, Any]) -> dict[str, Any]:
    response = await control.post("/faults", json=list(faults))
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def test_the_next_n_calls_answer_the_scripted_status_and_body(
    dli: httpx.AsyncClient, control: httpx.AsyncClient
) -> None:
    body = {"error_code": "DLI.0999", "error_msg": "try later"}
    await script(
        control,
        {"operation": "create", "action": "respond", "status": 503, "times": 2, "body": body},
    )
    answers = [await dli.post("/batches", json=JAR) for _ in range(3)]
    assert [a.status_code for a in answers] == [503, 503, 200]
    assert answers[0].json() == body
    assert all(a.headers["x-request-id"] for a in answers)
    jobs = (await control.get("/jobs")).json()
    assert jobs["total"] == 1
    calls = (await control.get("/calls")).json()
    assert calls["calls"]["create"] == 3
    assert calls["outcomes"]["create"] == {"503": 2, "200": 1}


async def test_a_scripted_error_without_a_body_is_a_dli_server_error(
    dli: httpx.AsyncClient, control: httpx.AsyncClient
) -> None:
    await script(control, {"operation": "list", "action": "respond", "status": 500})
    response = await dli.get("/batches")
    assert (response.status_code, response.json()["error_code"]) == (500, "DLI.0999")
    assert (await dli.get("/batches")).status_code == 200


async def test_a_fault_for_any_operation_hits_the_next_call_whatever_it_is(
    dli: httpx.AsyncClient, control: httpx.AsyncClient
) -> None:
    await script(control, {"action": "respond", "status": 502, "headers": {"X-Fault": "yes"}})
    response = await dli.get("/batches/0a324461-d9d9-45da-a52a-3b3c7a3d809e/state")
    assert (response.status_code, response.headers["x-fault"]) == (502, "yes")


async def test_a_delay_answers_normally_after_waiting(
    dli: httpx.AsyncClient, control: httpx.AsyncClient
) -> None:
    await script(control, {"operation": "list", "action": "delay", "seconds": 0.2})
    started = time.monotonic()
    response = await dli.get("/batches")
    assert response.status_code == 200
    assert time.monotonic() - started >= 0.2


async def test_a_delay_with_a_status_answers_that_status_after_waiting(
    dli: httpx.AsyncClient, control: httpx.AsyncClient
) -> None:
    await script(control, {"operation": "list", "action": "delay", "seconds": 0.1, "status": 504})
    started = time.monotonic()
    assert (await dli.get("/batches")).status_code == 504
    assert time.monotonic() - started >= 0.1


async def test_a_hung_call_never_answers_until_the_emulator_is_reset(
    dli: httpx.AsyncClient, control: httpx.AsyncClient
) -> None:
    await script(control, {"operation": "state", "action": "hang"})
    call = asyncio.ensure_future(dli.get("/batches/0a324461-d9d9-45da-a52a-3b3c7a3d809e/state"))
    done, _ = await asyncio.wait({call}, timeout=0.3)
    assert not done
    await control.post("/reset")
    response = await asyncio.wait_for(call, timeout=5)
    assert response.status_code == 503


async def test_a_dropped_connection_happens_before_the_job_is_created(
    dli: httpx.AsyncClient, control: httpx.AsyncClient
) -> None:
    await script(control, {"operation": "create", "action": "drop"})
    with pytest.raises(ConnectionDropped):
        await dli.post("/batches", json=JAR)
    assert (await control.get("/jobs")).json()["total"] == 0
    assert (await control.get("/calls")).json()["outcomes"]["create"] == {"dropped": 1}


async def test_a_fault_after_the_call_lets_the_job_be_created_but_loses_the_answer(
    dli: httpx.AsyncClient, control: httpx.AsyncClient
) -> None:
    await script(
        control, {"operation": "create", "action": "respond", "status": 500, "when": "after"}
    )
    response = await dli.post("/batches", json=JAR)
    assert response.status_code == 500
    jobs = (await control.get("/jobs")).json()["jobs"]
    assert [job["request"]["file"] for job in jobs] == [JAR["file"]]


async def test_a_throttle_answers_429_with_retry_after_at_the_scripted_rate(
    dli: httpx.AsyncClient, control: httpx.AsyncClient
) -> None:
    await script(control, {"operation": "list", "action": "throttle", "rate": 0.5, "retryAfter": 2})
    answers = [await dli.get("/batches") for _ in range(6)]
    assert [a.status_code for a in answers] == [200, 429, 200, 429, 200, 429]
    throttled = answers[1]
    assert throttled.headers["retry-after"] == "2"
    body = throttled.json()
    assert body["error_code"] == "APIG.0308"
    assert body["request_id"] == throttled.headers["x-request-id"]
    assert (await dli.get("/batches/0a324461-d9d9-45da-a52a-3b3c7a3d809e")).status_code == 400


async def test_a_throttle_with_times_stops_after_that_many_429s(
    dli: httpx.AsyncClient, control: httpx.AsyncClient
) -> None:
    await script(control, {"action": "throttle", "rate": 1, "times": 2})
    answers = [(await dli.get("/batches")).status_code for _ in range(3)]
    assert answers == [429, 429, 200]
    assert (await control.get("/faults")).json()["faults"] == []


async def test_killing_a_job_makes_it_dead_at_once(
    dli: httpx.AsyncClient, control: httpx.AsyncClient, fake_clock: FakeClock
) -> None:
    job = (await dli.post("/batches", json=JAR)).json()
    fake_clock.advance(2)
    killed = (await script(control, {"action": "kill", "batchId": job["id"]}))["killed"]
    assert (killed[0]["state"], killed[0]["stopReason"]) == ("dead", "killed by an emulator fault")
    state = (await dli.get(f"/batches/{job['id']}/state")).json()["state"]
    assert state == "dead"
    log = (await dli.get(f"/batches/{job['id']}/log")).json()["log"]
    assert "killed by an emulator fault" in log[-1]
    again = await control.post("/faults", json={"action": "kill", "batchId": job["id"]})
    assert again.status_code == 400


@pytest.mark.parametrize(
    ("spec", "named"),
    [
        ({"action": "explode"}, "action"),
        ({"action": "respond"}, "status"),
        ({"action": "respond", "status": 900}, "status"),
        ({"action": "drop", "operation": "upload"}, "operation"),
        ({"action": "drop", "times": 0}, "times"),
        ({"action": "drop", "when": "during"}, "when"),
        ({"action": "delay"}, "seconds"),
        ({"action": "throttle", "rate": 2}, "rate"),
        ({"action": "kill", "batchId": "0a324461-d9d9-45da-a52a-3b3c7a3d809e"}, "does not exist"),
    ],
)
async def test_a_fault_script_that_makes_no_sense_is_refused_naming_the_field(
    control: httpx.AsyncClient, spec: dict[str, Any], named: str
) -> None:
    response = await control.post("/faults", json=spec)
    assert response.status_code == 400
    assert named in response.json()["error"]


async def test_faults_can_be_listed_and_cleared(
    dli: httpx.AsyncClient, control: httpx.AsyncClient
) -> None:
    await script(control, {"operation": "show", "action": "hang", "times": 3})
    listed = (await control.get("/faults")).json()["faults"]
    assert [(f["operation"], f["action"], f["times"]) for f in listed] == [("show", "hang", 3)]
    assert (await control.delete("/faults")).json() == {"faults": []}


async def test_the_jobs_view_shows_each_request_and_its_state_history(
    dli: httpx.AsyncClient, control: httpx.AsyncClient, fake_clock: FakeClock
) -> None:
    job = (await dli.post("/batches", json={**JAR, "name": "seen"})).json()
    fake_clock.advance(10)
    shown = (await control.get(f"/jobs/{job['id']}")).json()
    assert shown["request"]["name"] == "seen"
    assert [h["state"] for h in shown["history"]] == ["starting", "running", "success"]
    assert shown["history"][1]["at"] == job["create_time"] + 1000
    assert (await control.get("/jobs/nope")).status_code == 404


async def test_reset_forgets_jobs_calls_and_faults(
    dli: httpx.AsyncClient, control: httpx.AsyncClient, emulator: Emulator
) -> None:
    await dli.post("/batches", json=JAR)
    await script(control, {"action": "respond", "status": 500, "times": 5})
    await control.post("/reset")
    assert (await control.get("/jobs")).json() == {"total": 0, "jobs": []}
    assert (await control.get("/calls")).json() == {"calls": {}, "outcomes": {}}
    assert emulator.faults.describe() == []
    assert (await dli.get("/batches")).status_code == 200


async def test_control_calls_are_not_counted_as_dli_calls(
    dli: httpx.AsyncClient, control: httpx.AsyncClient
) -> None:
    await dli.get("/batches")
    await control.get("/jobs")
    assert (await control.get("/calls")).json()["calls"] == {"list": 1}


async def test_a_share_of_calls_can_be_faulted_with_any_rule(
    dli: httpx.AsyncClient, control: httpx.AsyncClient
) -> None:
    """Storms: ``rate`` spreads a rule over the calls, as throttles do (0.25: every 4th)."""
    await script(control, {"action": "respond", "status": 503, "rate": 0.25, "times": 100})
    answers = [(await dli.get("/batches")).status_code for _ in range(8)]
    assert answers == [200, 200, 200, 503, 200, 200, 200, 503]


async def test_a_200_can_carry_an_error_body(
    dli: httpx.AsyncClient, control: httpx.AsyncClient
) -> None:
    body = {"error_code": "DLI.0999", "error_msg": "Internal error"}
    await script(control, {"operation": "list", "action": "respond", "status": 200, "body": body})
    response = await dli.get("/batches")
    assert (response.status_code, response.json()) == (200, body)


async def test_a_mangled_reply_loses_or_nulls_fields_in_it_and_in_each_session(
    dli: httpx.AsyncClient, control: httpx.AsyncClient
) -> None:
    created = [(await dli.post("/batches", json=JAR)).json()["id"] for _ in range(2)]
    await script(
        control,
        {"operation": "list", "action": "mangle", "remove": ["total"], "set": {"state": None}},
        {"operation": "show", "action": "mangle", "remove": ["id"]},
    )
    listed = (await dli.get("/batches")).json()
    assert "total" not in listed
    assert sorted(s["id"] for s in listed["sessions"]) == sorted(created)
    assert [s["state"] for s in listed["sessions"]] == [None, None]
    shown = (await dli.get(f"/batches/{created[0]}")).json()
    assert "id" not in shown
    assert shown["state"] == "starting"
    assert (await dli.get("/batches")).json()["total"] == 2, "the fault was used up"


async def test_a_listed_rule_is_spelled_as_it_was_scripted(control: httpx.AsyncClient) -> None:
    spec = {"operation": "list", "action": "mangle", "set": {"state": None}, "rate": 0.5}
    listed = (await script(control, spec))["faults"][0]
    assert {k: listed[k] for k in spec} == spec


@pytest.mark.parametrize(
    ("spec", "named"),
    [
        ({"action": "late", "operation": "list", "seconds": 1}, "create"),
        ({"action": "late", "operation": "create"}, "seconds"),
        ({"action": "mangle", "operation": "list"}, "remove or set"),
        ({"action": "mangle", "remove": "total"}, "remove"),
        ({"action": "drip", "seconds": 1, "chunkBytes": 0}, "chunkBytes"),
        ({"action": "respond", "status": 503, "rate": 0}, "rate"),
    ],
)
async def test_the_new_fault_scripts_are_checked_too(
    control: httpx.AsyncClient, spec: dict[str, Any], named: str
) -> None:
    response = await control.post("/faults", json=spec)
    assert response.status_code == 400
    assert named in response.json()["error"]
