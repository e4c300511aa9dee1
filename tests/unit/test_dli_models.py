"""DLI wire models: exact field spellings, tolerant responses, strict requests, states."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from huaweicloudsdkdli.v1.model.create_spark_job_request_body import CreateSparkJobRequestBody
from pydantic import ValidationError

from dli_operator.dli.errors import (
    DliAuthError,
    DliClientError,
    DliConflict,
    DliNotFound,
    DliRouteNotFound,
    DliServerError,
    DliThrottled,
    api_error,
    parse_error_body,
)
from dli_operator.dli.models import (
    BatchJob,
    BatchJobRequest,
    BatchList,
    BatchLog,
    BatchState,
    BatchStateResponse,
    ErrorBody,
    JobResource,
    JobResourcesGroup,
    is_cancellable,
    is_known_state,
    is_terminal,
)

ID = "178fa687-2e8a-41ed-a439-b00de60bb176"

FULL_REQUEST = BatchJobRequest(
    file="obs://b/app.jar",
    class_name="org.example.Main",
    queue="q1",
    args=["--x", "1"],
    sc_type="B",
    jars=["j.jar"],
    py_files=["p.py"],
    files=["f.txt"],
    modules=["sys.datasource.rds"],
    resources=[JobResource(name="g/r.jar", type="jar")],
    groups=[JobResourcesGroup(name="g", resources=[JobResource(name="r.jar", type="jar")])],
    conf={"spark.dli.metaAccess.enable": "true"},
    name="demo",
    driver_memory="2G",
    driver_cores=1,
    executor_memory="4G",
    executor_cores=2,
    num_executors=3,
    obs_bucket="bucket",
    auto_recovery=True,
    max_retry_times=5,
    feature="basic",
    spark_version="3.3.1",
    image="org/image:1",
    execution_agency_urn="agency",
    catalog_name="dli",
)


def test_every_create_field_is_sent_with_the_documented_spelling() -> None:
    wire = FULL_REQUEST.model_dump(by_alias=True, exclude_none=True)
    assert set(wire) == {
        "file", "className", "queue", "args", "sc_type", "jars", "pyFiles", "files", "modules",
        "resources", "groups", "conf", "name", "driverMemory", "driverCores", "executorMemory",
        "executorCores", "numExecutors", "obs_bucket", "auto_recovery", "max_retry_times",
        "feature", "spark_version", "image", "execution_agency_urn", "catalog_name",
    }  # fmt: skip


def test_the_wire_body_uses_the_same_keys_as_the_official_sdk_model() -> None:
    sdk_keys = set(CreateSparkJobRequestBody.attribute_map.values())
    ours = set(FULL_REQUEST.model_dump(by_alias=True, exclude_none=True))
    assert ours <= sdk_keys | {"cluster_name"}
    assert sdk_keys - ours <= {"cluster_name"}


def test_unset_fields_are_left_out_and_the_body_is_compact_json() -> None:
    body = BatchJobRequest(file="obs://b/a.py", queue="q").to_wire()
    assert body == b'{"file":"obs://b/a.py","queue":"q"}'


def test_legacy_snake_case_and_stored_spellings_are_accepted_and_normalised() -> None:
    legacy = {"file": "f", "class_name": "C", "python_files": ["p"], "driver_memory": "1G",
              "num_executors": 2, "autoRecovery": True, "maxRetryTimes": 4}  # fmt: skip
    wire = json.loads(BatchJobRequest.model_validate(legacy).to_wire())
    assert wire == {"file": "f", "className": "C", "pyFiles": ["p"], "driverMemory": "1G",
                    "numExecutors": 2, "auto_recovery": True, "max_retry_times": 4}  # fmt: skip


@pytest.mark.parametrize(
    "bad",
    [
        {"file": "f", "bogus": 1},
        {"queue": "q"},
        {"file": ""},
        {"file": "f", "name": "x" * 129},
        {"file": "f", "max_retry_times": 101},
        {"file": "f", "sc_type": "D"},
        {"file": "f", "feature": "gpu"},
        {"file": "f", "numExecutors": -1},
    ],
)
def test_a_create_request_rejects_unknown_or_invalid_fields(bad: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        BatchJobRequest.model_validate(bad)


def test_the_documented_create_response_parses() -> None:
    job = BatchJob.model_validate_json(
        '{"id":"07a3e4e6-9a28-4e92-8d3f-9c538621a166","appId":"","name":"","owner":"test1",'
        '"proxyUser":"","state":"starting","kind":"","log":[],"sc_type":"CUSTOMIZED",'
        '"cluster_name":"aaa","queue":"aaa","create_time":1607589874156,"update_time":1607589874156}'
    )
    assert job.state is BatchState.STARTING
    assert job.sc_type == "CUSTOMIZED"
    assert job.created_at == datetime(2020, 12, 10, 8, 44, 34, 156000, tzinfo=UTC)


def test_a_list_page_tolerates_null_app_ids_missing_fields_and_new_ones() -> None:
    page = BatchList.model_validate(
        {"from": 0, "total": 1, "create_time": 1, "brand_new": {"x": 1},
         "sessions": [{"id": ID, "state": "dead", "appId": None, "log": None,
                       "sc_type": "A", "cluster_name": "test", "create_time": 1531906043036}]}
    )  # fmt: skip
    assert page.total == 1
    assert page.sessions[0].app_id is None
    assert page.sessions[0].duration is None


def test_a_response_dumps_back_with_dli_spelling() -> None:
    job = BatchJob(id=ID, state=BatchState.RUNNING, app_id="spark-1", proxy_user="u")
    assert job.model_dump(by_alias=True, exclude_none=True) == {
        "id": ID, "state": "running", "appId": "spark-1", "proxyUser": "u", "log": []
    }  # fmt: skip


def test_the_state_and_log_responses_parse() -> None:
    assert BatchStateResponse.model_validate({"id": ID, "state": "Success"}).state == "success"
    log = BatchLog.model_validate({"id": "i", "from": 5, "total": 7, "log": ["a", "b"]})
    assert (log.from_, log.total, log.log) == (5, 7, ["a", "b"])


@pytest.mark.parametrize(
    ("raw", "state", "terminal"),
    [
        ("starting", BatchState.STARTING, False),
        ("running", BatchState.RUNNING, False),
        ("recovering", BatchState.RECOVERING, False),
        ("success", BatchState.SUCCESS, True),
        ("Success", BatchState.SUCCESS, True),
        (" DEAD ", BatchState.DEAD, True),
    ],
)
def test_documented_states_parse_case_insensitively(
    raw: str, state: BatchState, terminal: bool
) -> None:
    assert BatchState(raw) is state
    assert is_terminal(raw) is terminal


@pytest.mark.parametrize("raw", ["killed", "error", "Idle", "shutting_down"])
def test_an_unknown_state_is_kept_verbatim_and_is_never_terminal(raw: str) -> None:
    job = BatchJob.model_validate({"id": ID, "state": raw})
    assert job.state.value == raw
    assert not job.state.known
    assert not is_known_state(job.state)
    assert str(job.state) == raw
    assert not is_terminal(job.state)
    assert job.model_dump(by_alias=True)["state"] == raw


def test_only_live_jobs_are_cancellable() -> None:
    live = [s for s in BatchState if is_cancellable(s)]
    assert live == [BatchState.STARTING, BatchState.RUNNING, BatchState.RECOVERING]


NO_QUEUE = b'{"error_code":"DLI.0002","error_msg":"There is no queue named q"}'
BAD_SIG = b'{"error_code":"APIG.0301","error_msg":"verify aksk signature fail","request_id":"r"}'
NO_ROUTE = b'{"error_code":"APIG.0101","error_msg":"The API does not exist"}'
IAM_401 = b'{"error":{"code":401,"message":"Authentication required","title":"Unauthorized"}}'
HTML_502 = b"<html><head><title>502 Bad Gateway</title></head><body>nginx</body></html>"


@pytest.mark.parametrize(
    ("status", "body", "cls", "code"),
    [
        (400, b'{"error_code":"DLI.0001","error_msg":"bad"}', DliClientError, "DLI.0001"),
        (400, NO_QUEUE, DliNotFound, "DLI.0002"),
        (400, b'{"error_code":"DLI.0006","error_msg":"exists"}', DliConflict, "DLI.0006"),
        (400, b'{"error_code":"DLI.0999","error_msg":"oops"}', DliServerError, "DLI.0999"),
        (401, BAD_SIG, DliAuthError, "APIG.0301"),
        (404, NO_ROUTE, DliRouteNotFound, "APIG.0101"),
        (429, b'{"error_code":"APIG.0308","error_msg":"throttled"}', DliThrottled, "APIG.0308"),
        (404, b'{"error_code":"DLI.0023","error_msg":"none"}', DliNotFound, "DLI.0023"),
        (500, b'{"errorCode":"X.1","errorMsg":"camel"}', DliServerError, "X.1"),
        (401, IAM_401, DliAuthError, "401"),
        (502, HTML_502, DliServerError, "502"),
        (503, b"", DliServerError, "503"),
        (403, b"[1, 2]", DliAuthError, "403"),
    ],
)  # fmt: skip
def test_error_bodies_map_to_the_right_class_by_code_then_status(
    status: int, body: bytes, cls: type[Exception], code: str
) -> None:
    err = api_error(status, parse_error_body(status, body, "text/html"), request_id=None)
    assert type(err) is cls
    assert err.error_code == code
    assert err.status == status
    assert err.error_msg


def test_an_html_error_page_becomes_a_readable_message() -> None:
    page = b"<html><head><title>502 Bad Gateway</title></head><body>" + b"x" * 5000 + b"</body>"
    body = parse_error_body(502, page, "text/html; charset=utf-8")
    assert body.error_msg == "HTTP 502 with a non-JSON body (text/html): '502 Bad Gateway'"


def test_an_api_error_message_names_status_code_text_and_request_id() -> None:
    body = ErrorBody(error_code="DLI.0001", error_msg="bad conf")
    err = api_error(400, body, request_id="req-1", operation="create_batch")
    assert str(err) == "DLI create_batch: HTTP 400 DLI.0001: bad conf (request id req-1)"
    assert err.request_id == "req-1"


def test_the_gateway_request_id_in_the_body_is_used_when_no_header_carries_one() -> None:
    body = ErrorBody.model_validate(
        {"error_code": "APIG.0301", "error_msg": "m", "request_id": "b"}
    )
    assert api_error(401, body, request_id=None).request_id == "b"
