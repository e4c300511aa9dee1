"""The six batch endpoints, in-process: shapes, validation, auth, and the state machine."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from dli_operator.dli.auth import AkSkAuth
from dli_operator.dli.models import BatchJob, BatchList, BatchLog, BatchStateResponse
from dli_operator.emulator.clock import FakeClock
from dli_operator.emulator.config import EmulatorConfig

SignAs = Callable[..., AkSkAuth]
JAR = {"file": "obs://bucket/app.jar", "className": "org.example.Main", "queue": "q1"}


async def submit(dli: httpx.AsyncClient, **fields: Any) -> dict[str, Any]:
    response = await dli.post("/batches", json={**JAR, **fields})
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def state_of(dli: httpx.AsyncClient, batch_id: str) -> str:
    response = await dli.get(f"/batches/{batch_id}/state")
    assert response.status_code == 200, response.text
    return str(response.json()["state"])


async def test_create_answers_starting_with_an_empty_app_id_and_millisecond_times(
    dli: httpx.AsyncClient, fake_clock: FakeClock
) -> None:
    response = await dli.post("/batches", json={**JAR, "name": "demo"})
    assert response.status_code == 200
    assert response.headers["x-request-id"]
    body = response.json()
    assert body["state"] == "starting"
    assert body["appId"] == ""
    assert body["log"] == []
    assert body["create_time"] == body["update_time"] == int(fake_clock() * 1000)
    assert (body["queue"], body["cluster_name"], body["name"], body["sc_type"]) == (
        "q1",
        "q1",
        "demo",
        "A",
    )
    BatchJob.model_validate(body)


async def test_legacy_snake_case_keys_are_accepted_and_stored_in_camel_case(
    dli: httpx.AsyncClient,
) -> None:
    legacy = {
        "file": "obs://bucket/app.jar",
        "class_name": "org.example.Main",
        "cluster_name": "default",
        "driver_memory": "2G",
        "num_executors": 3,
        "python_files": ["obs://bucket/lib.py"],
        "auto_recovery": True,
        "max_retry_times": 3,
    }
    created = (await dli.post("/batches", json=legacy)).json()
    details = (await dli.get(f"/batches/{created['id']}")).json()
    stored = json.loads(details["req_body"])
    assert stored["className"] == "org.example.Main"
    assert stored["driverMemory"] == "2G"
    assert stored["numExecutors"] == 3
    assert stored["pyFiles"] == ["obs://bucket/lib.py"]
    assert (stored["autoRecovery"], stored["maxRetryTimes"]) == (True, 3)
    assert details["queue"] == "default"
    assert details["sc_type"] == "CUSTOMIZED"
    assert "duration" not in details


async def test_a_python_job_needs_no_class_name(dli: httpx.AsyncClient) -> None:
    body = {"file": "obs://bucket/job.py", "queue": "q1"}
    assert (await dli.post("/batches", json=body)).status_code == 200


@pytest.mark.parametrize(
    ("sizing", "expected"),
    [({}, "A"), ({"sc_type": "C"}, "C"), ({"sc_type": "B", "executorMemory": "8G"}, "CUSTOMIZED")],
)
async def test_sc_type_is_the_given_type_or_customized_when_sizes_override_it(
    dli: httpx.AsyncClient, sizing: dict[str, Any], expected: str
) -> None:
    assert (await submit(dli, **sizing))["sc_type"] == expected


INVALID = [
    ({"file": None}, "DLI.0001", "file"),
    ({"file": ""}, "DLI.0001", "file"),
    ({"className": None}, "DLI.0001", "className"),
    ({"queue": None}, "DLI.0001", "queue"),
    ({"queue": "nope"}, "DLI.0002", "There is no queue named nope"),
    ({"sc_type": "D"}, "DLI.0001", "sc_type"),
    ({"driverMemory": "2048"}, "DLI.0001", "driverMemory"),
    ({"executor_memory": 4}, "DLI.0001", "executor_memory"),
    ({"max_retry_times": 101}, "DLI.0001", "max_retry_times"),
    ({"max_retry_times": -1}, "DLI.0001", "max_retry_times"),
    ({"name": "x" * 129}, "DLI.0001", "name"),
    ({"image": "org/spark:1"}, "DLI.0001", "image"),
    ({"feature": "custom"}, "DLI.0001", "image"),
    ({"feature": "gpu"}, "DLI.0001", "feature"),
    ({"numExecutors": 0}, "DLI.0001", "numExecutors"),
    ({"driverCores": True}, "DLI.0001", "driverCores"),
    ({"auto_recovery": "yes"}, "DLI.0001", "auto_recovery"),
    ({"args": "--x"}, "DLI.0001", "args"),
    ({"jars": [1]}, "DLI.0001", "jars"),
    ({"resources": [{"name": 1}]}, "DLI.0001", "resources"),
    ({"groups": [{"name": "g", "resources": "r"}]}, "DLI.0001", "groups.resources"),
    ({"conf": ["a"]}, "DLI.0001", "conf"),
    ({"spark_version": 3}, "DLI.0001", "spark_version"),
    ({"colour": "blue"}, "DLI.0001", "colour"),
    ({"conf": {"spark.dli.emulator.outcome": "maybe"}}, "DLI.0001", "spark.dli.emulator.outcome"),
    (
        {"conf": {"spark.dli.emulator.runSeconds": "-1"}},
        "DLI.0001",
        "spark.dli.emulator.runSeconds",
    ),
    ({"conf": {"spark.dli.emulator.startSeconds": "x"}}, "DLI.0001", "startSeconds"),
    ({"conf": {"spark.dli.emulator.failFirst": "2"}}, "DLI.0001", "spark.dli.emulator.key"),
]


@pytest.mark.parametrize(("change", "code", "named"), INVALID)
async def test_an_invalid_create_is_refused_with_dli_code_and_the_parameter_named(
    dli: httpx.AsyncClient, change: dict[str, Any], code: str, named: str
) -> None:
    body = {key: value for key, value in {**JAR, **change}.items() if value is not None}
    response = await dli.post("/batches", json=body)
    assert response.status_code == 400
    assert response.json()["error_code"] == code
    assert named in response.json()["error_msg"]
    assert response.headers["x-request-id"]


@pytest.mark.parametrize("raw", [b"{not json", b"[1, 2]", b""])
async def test_a_create_body_that_is_not_a_json_object_is_a_parameter_error(
    dli: httpx.AsyncClient, raw: bytes
) -> None:
    response = await dli.post("/batches", content=raw)
    assert (response.status_code, response.json()["error_code"]) == (400, "DLI.0001")


async def test_a_job_starts_runs_and_succeeds_as_the_clock_advances(
    dli: httpx.AsyncClient, fake_clock: FakeClock
) -> None:
    job = await submit(dli)
    fake_clock.advance(0.5)
    assert await state_of(dli, job["id"]) == "starting"
    fake_clock.advance(1.0)
    running = (await dli.get(f"/batches/{job['id']}")).json()
    assert running["state"] == "running"
    assert running["appId"].startswith("spark-")
    assert any("has started running" in line for line in running["log"])
    assert running["update_time"] == job["create_time"] + 1000
    fake_clock.advance(5.0)
    page = BatchList.model_validate((await dli.get("/batches")).json())
    done = page.sessions[0]
    assert done.state == "success"
    assert done.duration == 5000
    assert done.update_time == job["create_time"] + 6000
    assert done.app_id == running["appId"]


async def test_conf_keys_choose_the_outcome_and_the_timing(
    dli: httpx.AsyncClient, fake_clock: FakeClock
) -> None:
    conf = {
        "spark.dli.emulator.outcome": "dead",
        "spark.dli.emulator.startSeconds": "10",
        "spark.dli.emulator.runSeconds": "0.5",
    }
    job = await submit(dli, conf=conf)
    fake_clock.advance(9.9)
    assert await state_of(dli, job["id"]) == "starting"
    fake_clock.advance(0.2)
    assert await state_of(dli, job["id"]) == "running"
    fake_clock.advance(0.4)
    assert await state_of(dli, job["id"]) == "dead"


async def test_fail_first_fails_the_first_submissions_that_share_a_key(
    dli: httpx.AsyncClient, fake_clock: FakeClock
) -> None:
    conf = {"spark.dli.emulator.failFirst": "2", "spark.dli.emulator.key": "retry-me"}
    ids = [(await submit(dli, conf=conf))["id"] for _ in range(3)]
    other = await submit(dli, conf={**conf, "spark.dli.emulator.key": "someone-else"})
    fake_clock.advance(60)
    states = [await state_of(dli, batch_id) for batch_id in ids]
    assert states == ["dead", "dead", "success"]
    assert await state_of(dli, other["id"]) == "dead"


async def test_auto_recovery_recovers_until_max_retry_times_then_ends_dead(
    dli: httpx.AsyncClient, fake_clock: FakeClock
) -> None:
    conf = {"spark.dli.emulator.outcome": "dead", "spark.dli.emulator.runSeconds": "2"}
    job = await submit(dli, conf=conf, auto_recovery=True, max_retry_times=2)
    seen = []
    for _ in range(12):
        fake_clock.advance(1.0)
        seen.append(await state_of(dli, job["id"]))
    collapsed = [state for i, state in enumerate(seen) if i == 0 or seen[i - 1] != state]
    assert collapsed == ["running", "recovering", "running", "recovering", "running", "dead"]
    second = BatchLog.model_validate((await dli.get(f"/batches/{job['id']}/log?index=1")).json())
    assert any("attempt 1 is running" in line for line in second.log)


async def test_auto_recovery_with_fail_first_recovers_and_then_succeeds(
    dli: httpx.AsyncClient, fake_clock: FakeClock
) -> None:
    conf = {"spark.dli.emulator.failFirst": "1", "spark.dli.emulator.key": "flaky"}
    job = await submit(dli, conf=conf, auto_recovery=True)
    fake_clock.advance(6.5)
    assert await state_of(dli, job["id"]) == "recovering"
    fake_clock.advance(10)
    assert await state_of(dli, job["id"]) == "success"


async def test_max_retry_times_has_no_effect_without_auto_recovery(
    dli: httpx.AsyncClient, fake_clock: FakeClock
) -> None:
    job = await submit(dli, conf={"spark.dli.emulator.outcome": "dead"}, max_retry_times=5)
    fake_clock.advance(6.5)
    assert await state_of(dli, job["id"]) == "dead"


async def test_cancel_kills_a_running_job_and_answers_deleted(
    dli: httpx.AsyncClient, fake_clock: FakeClock
) -> None:
    job = await submit(dli)
    fake_clock.advance(2)
    response = await dli.delete(f"/batches/{job['id']}")
    assert (response.status_code, response.json()) == (200, {"msg": "deleted"})
    assert await state_of(dli, job["id"]) == "dead"
    fake_clock.advance(60)
    assert await state_of(dli, job["id"]) == "dead"


async def test_a_job_cancelled_the_moment_it_was_created_is_dead(
    dli: httpx.AsyncClient, fake_clock: FakeClock
) -> None:
    job = await submit(dli)
    assert (await dli.delete(f"/batches/{job['id']}")).status_code == 200
    assert await state_of(dli, job["id"]) == "dead"
    fake_clock.advance(60)
    details = (await dli.get(f"/batches/{job['id']}")).json()
    assert (details["state"], details["appId"]) == ("dead", "")


async def test_cancelling_a_finished_job_is_refused(
    dli: httpx.AsyncClient, fake_clock: FakeClock
) -> None:
    job = await submit(dli)
    fake_clock.advance(60)
    response = await dli.delete(f"/batches/{job['id']}")
    assert (response.status_code, response.json()["error_code"]) == (400, "DLI.0007")


@pytest.mark.parametrize("method", ["GET", "DELETE"])
@pytest.mark.parametrize(
    ("batch_id", "code"),
    [("0a324461-d9d9-45da-a52a-3b3c7a3d809e", "DLI.0002"), ("not-a-batch", "DLI.0001")],
)
async def test_an_unknown_or_malformed_batch_id_gets_a_dli_error(
    dli: httpx.AsyncClient, method: str, batch_id: str, code: str
) -> None:
    response = await dli.request(method, f"/batches/{batch_id}")
    assert (response.status_code, response.json()["error_code"]) == (400, code)
    assert batch_id in response.json()["error_msg"]


async def test_list_filters_by_every_documented_parameter(
    dli: httpx.AsyncClient, fake_clock: FakeClock
) -> None:
    first = await submit(dli, name="a job: one")
    fake_clock.advance(2)
    second = await submit(dli, name="other", queue="default")
    fake_clock.advance(0.5)

    async def ids(**params: Any) -> list[str]:
        page = (await dli.get("/batches", params=params)).json()
        assert page["total"] == len(page["sessions"])
        return [session["id"] for session in page["sessions"]]

    assert await ids() == [second["id"], first["id"]]
    assert await ids(queue_name="q1") == [first["id"]]
    assert await ids(cluster_name="default") == [second["id"]]
    assert await ids(job_name="a job: one") == [first["id"]]
    assert await ids(**{"job-id": second["id"]}) == [second["id"]]
    assert await ids(state="running") == [first["id"]]
    assert await ids(state="starting") == [second["id"]]
    assert await ids(owner="emulator") == [second["id"], first["id"]]
    assert await ids(owner="mallory") == []
    assert await ids(start=second["create_time"]) == [second["id"]]
    assert await ids(end=first["create_time"]) == [first["id"]]
    assert await ids(order="CREATE_TIME_ASC") == [first["id"], second["id"]]
    assert await ids(order="DURATION_DESC") == [first["id"], second["id"]]


async def test_list_pages_with_from_and_size_and_reports_the_total(
    dli: httpx.AsyncClient, fake_clock: FakeClock
) -> None:
    created = []
    for _ in range(5):
        created.append((await submit(dli))["id"])
        fake_clock.advance(0.001)
    page = (await dli.get("/batches", params={"from": 1, "size": 2})).json()
    assert (page["from"], page["total"]) == (1, 5)
    assert [s["id"] for s in page["sessions"]] == [created[3], created[2]]
    assert page["create_time"] == int(fake_clock() * 1000)
    assert json.loads(page["sessions"][0]["req_body"])["file"] == JAR["file"]
    past_end = (await dli.get("/batches", params={"from": 5, "size": 2})).json()
    assert (past_end["total"], past_end["sessions"]) == (5, [])


@pytest.mark.parametrize(
    ("params", "named"),
    [
        ({"from": "-1"}, "from"),
        ({"size": "ten"}, "size"),
        ({"state": "sleeping"}, "state"),
        ({"order": "NAME_ASC"}, "order"),
        ({"start": "yesterday"}, "start"),
        ({"queue_name": "q1", "cluster_name": "default"}, "cluster_name"),
    ],
)
async def test_a_bad_list_parameter_is_a_parameter_error_naming_it(
    dli: httpx.AsyncClient, params: dict[str, str], named: str
) -> None:
    response = await dli.get("/batches", params=params)
    assert (response.status_code, response.json()["error_code"]) == (400, "DLI.0001")
    assert named in response.json()["error_msg"]


async def test_the_log_call_pages_through_the_driver_log(
    dli: httpx.AsyncClient, fake_clock: FakeClock
) -> None:
    job = await submit(dli)
    fake_clock.advance(60)
    everything = (await dli.get(f"/batches/{job['id']}/log")).json()
    assert everything["total"] == len(everything["log"]) > 3
    window = (await dli.get(f"/batches/{job['id']}/log", params={"from": 1, "size": 2})).json()
    assert (window["from"], window["log"]) == (1, everything["log"][1:3])
    tail = (await dli.get(f"/batches/{job['id']}/log", params={"size": 1})).json()
    assert tail["log"] == everything["log"][-1:]
    wrong = await dli.get(f"/batches/{job['id']}/log", params={"type": "executor"})
    assert (wrong.status_code, wrong.json()["error_code"]) == (400, "DLI.0001")


async def test_state_answers_id_and_state(dli: httpx.AsyncClient) -> None:
    job = await submit(dli)
    body = (await dli.get(f"/batches/{job['id']}/state")).json()
    assert body == {"id": job["id"], "state": "starting"}
    BatchStateResponse.model_validate(body)


async def test_a_path_with_a_trailing_slash_is_the_same_api(dli: httpx.AsyncClient) -> None:
    job = await submit(dli)
    assert (await dli.get(f"/batches/{job['id']}/state/")).json()["state"] == "starting"


@pytest.mark.parametrize(
    ("method", "path"),
    [("GET", "/v2.0/p/jobs"), ("PUT", "/v2.0/p/batches"), ("GET", "/")],
)
async def test_an_unknown_api_is_the_gateway_404(
    dli: httpx.AsyncClient, method: str, path: str
) -> None:
    response = await dli.request(method, "http://dli.emulator" + path)
    body = response.json()
    assert (response.status_code, body["error_code"]) == (404, "APIG.0101")
    assert body["request_id"] == response.headers["x-request-id"]


async def test_a_wrong_secret_key_is_refused_by_the_gateway(
    dli: httpx.AsyncClient, emulator_config: EmulatorConfig, fake_clock: FakeClock, sign_as: SignAs
) -> None:
    wrong = sign_as(emulator_config, fake_clock, secret="not-the-secret")
    response = await dli.post("/batches", json=JAR, auth=wrong)
    body = response.json()
    assert (response.status_code, body["error_code"]) == (401, "APIG.0301")
    assert "signature" in body["error_msg"]
    assert body["request_id"] == response.headers["x-request-id"]


async def test_an_unknown_access_key_is_refused(
    dli: httpx.AsyncClient, fake_clock: FakeClock, sign_as: SignAs
) -> None:
    stranger = sign_as(EmulatorConfig(access_key="STRANGER"), fake_clock)
    response = await dli.get("/batches", auth=stranger)
    assert (response.status_code, response.json()["error_code"]) == (401, "APIG.0301")


async def test_a_signature_older_than_fifteen_minutes_is_refused(
    dli: httpx.AsyncClient, emulator_config: EmulatorConfig, sign_as: SignAs
) -> None:
    stale_clock = FakeClock()
    stale_clock.advance(-16 * 60)
    response = await dli.get("/batches", auth=sign_as(emulator_config, stale_clock))
    assert (response.status_code, response.json()["error_code"]) == (401, "APIG.0301")
    stale_clock.advance(2 * 60)
    response = await dli.get("/batches", auth=sign_as(emulator_config, stale_clock))
    assert response.status_code == 200


async def test_a_request_without_credentials_is_refused(dli: httpx.AsyncClient) -> None:
    dli.auth = None  # type: ignore[assignment]
    response = await dli.get("/batches")
    assert (response.status_code, response.json()["error_code"]) == (401, "APIG.0301")


async def test_an_iam_token_from_the_configured_set_is_accepted(
    dli: httpx.AsyncClient, emulator_token: str
) -> None:
    dli.auth = None  # type: ignore[assignment]
    accepted = await dli.get("/batches", headers={"X-Auth-Token": emulator_token})
    assert accepted.status_code == 200
    forged = await dli.get("/batches", headers={"X-Auth-Token": "forged"})
    assert (forged.status_code, forged.json()["error_code"]) == (401, "APIG.0301")


async def test_another_project_is_refused(dli: httpx.AsyncClient) -> None:
    response = await dli.get("http://dli.emulator/v2.0/" + "f" * 32 + "/batches")
    assert (response.status_code, response.json()["error_code"]) == (401, "APIG.0301")


async def test_the_signature_covers_the_query_string(
    dli: httpx.AsyncClient, emulator_config: EmulatorConfig, fake_clock: FakeClock, sign_as: SignAs
) -> None:
    signed = dli.build_request("GET", "/batches", params={"job_name": "a b:c"})
    flow = sign_as(emulator_config, fake_clock).auth_flow(signed)
    request = next(flow)
    tampered = httpx.Request(
        "GET", request.url.copy_with(query=b"job_name=other"), headers=request.headers
    )
    response = await dli.send(tampered, auth=None)
    assert (response.status_code, response.json()["error_code"]) == (401, "APIG.0301")
