"""The official Huawei SDK talks to the emulator over real HTTP with AK/SK.

``huaweicloudsdkdli`` signs with ``huaweicloudsdkcore``'s own signer and parses every reply into
its own models, so passing here proves the signature check and the response shapes against the
reference implementation rather than against our own client. Every test runs against both back
ends (scripted and spark, issue 13); the last one runs a real Spark job.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

import pytest
from huaweicloudsdkcore.auth.credentials import BasicCredentials
from huaweicloudsdkcore.exceptions.exceptions import ClientRequestException
from huaweicloudsdkcore.http.http_config import HttpConfig
from huaweicloudsdkdli.v1 import (
    CancelSparkJobRequest,
    CreateSparkJobRequest,
    CreateSparkJobRequestBody,
    DliClient,
    ListSparkJobsRequest,
    ShowSparkJobLogRequest,
    ShowSparkJobRequest,
    ShowSparkJobStatusRequest,
)

from dli_operator.emulator.processes import SparkUnavailable, preflight

if TYPE_CHECKING:
    from conftest import LiveEmulator

NAME = "nightly report: 2025 Q1"
COUNT = """\
from pyspark.sql import SparkSession

spark = SparkSession.builder.getOrCreate()
print("rows:", spark.range(5).count())
spark.stop()
"""


@pytest.fixture(scope="module")
def live_server(backend_server: LiveEmulator) -> LiveEmulator:
    """This module's tests run against each back end."""
    return backend_server


def sdk_client(live: LiveEmulator, *, secret_key: str | None = None) -> DliClient:
    config = live.config
    credentials = BasicCredentials(
        config.access_key, secret_key or config.secret_key, config.project_id
    )
    http = HttpConfig.get_default_config()
    http.timeout = (5, 10)
    return (
        DliClient.new_builder()
        .with_credentials(credentials)
        .with_endpoints([live.url])
        .with_http_config(http)
        .build()
    )


def create_body(queue: str = "q1") -> CreateSparkJobRequestBody:
    return CreateSparkJobRequestBody(
        file="obs://bucket/app.jar",
        class_name="org.example.Main",
        queue=queue,
        name=NAME,
        conf={"spark.dli.emulator.runSeconds": "600"},
        driver_memory="2G",
        num_executors=2,
        auto_recovery=True,
        max_retry_times=3,
    )


def test_the_official_sdk_creates_shows_lists_and_cancels_a_job(
    live_emulator: LiveEmulator,
) -> None:
    client = sdk_client(live_emulator)
    created = client.create_spark_job(CreateSparkJobRequest(body=create_body()))
    assert created.state == "starting"
    assert created.app_id == ""
    assert created.sc_type == "CUSTOMIZED"

    shown = client.show_spark_job(ShowSparkJobRequest(batch_id=created.id))
    assert (shown.id, shown.name, shown.queue) == (created.id, NAME, "q1")
    assert '"driverMemory":"2G"' in shown.req_body

    status = client.show_spark_job_status(ShowSparkJobStatusRequest(batch_id=created.id))
    assert (status.id, status.state) == (created.id, "starting")

    listed = client.list_spark_jobs(ListSparkJobsRequest(job_name=NAME, queue_name="q1", size=10))
    assert listed.total == 1
    assert [job.id for job in listed.sessions] == [created.id]
    assert listed.sessions[0].create_time == created.create_time

    cancelled = client.cancel_spark_job(CancelSparkJobRequest(batch_id=created.id))
    assert cancelled.msg == "deleted"
    after = client.show_spark_job_status(ShowSparkJobStatusRequest(batch_id=created.id))
    assert after.state == "dead"


def test_the_sdk_with_a_wrong_secret_key_gets_apig_0301(live_emulator: LiveEmulator) -> None:
    client = sdk_client(live_emulator, secret_key="wrong-secret")
    with pytest.raises(ClientRequestException) as caught:
        client.list_spark_jobs(ListSparkJobsRequest())
    assert (caught.value.status_code, caught.value.error_code) == (401, "APIG.0301")
    assert caught.value.request_id


def test_the_sdk_surfaces_a_missing_queue_as_dli_0002_with_the_request_id(
    live_emulator: LiveEmulator,
) -> None:
    client = sdk_client(live_emulator)
    with pytest.raises(ClientRequestException) as caught:
        client.create_spark_job(CreateSparkJobRequest(body=create_body(queue="nope")))
    assert (caught.value.status_code, caught.value.error_code) == (400, "DLI.0002")
    assert caught.value.error_msg == "There is no queue named nope"
    assert caught.value.request_id


def test_the_sdk_follows_a_real_spark_job_and_reads_its_driver_log(
    live_emulator: LiveEmulator,
) -> None:
    spark = live_emulator.config.spark
    if spark is None:
        pytest.skip("runs a job for real: spark back end only")
    try:
        preflight()
    except SparkUnavailable as missing:
        pytest.skip(str(missing))
    (spark.obs_root / "bucket").mkdir(parents=True, exist_ok=True)
    (spark.obs_root / "bucket" / "count.py").write_text(COUNT)
    client = sdk_client(live_emulator)
    body = CreateSparkJobRequestBody(file="obs://bucket/count.py", queue="default", name="count")
    created = client.create_spark_job(CreateSparkJobRequest(body=body))
    assert (created.state, created.app_id) == ("starting", "")

    deadline = time.monotonic() + 240
    shown = client.show_spark_job(ShowSparkJobRequest(batch_id=created.id))
    while shown.state not in ("success", "dead") and time.monotonic() < deadline:
        time.sleep(1)
        shown = client.show_spark_job(ShowSparkJobRequest(batch_id=created.id))
    assert shown.state == "success", shown.log
    assert shown.app_id.startswith("local-")
    assert shown.log[-1] == "rows: 5"

    with pytest.warns(DeprecationWarning, match="show_spark_job_log"):  # DLI deprecated it
        page = client.show_spark_job_log(ShowSparkJobLogRequest(batch_id=created.id, _from=0))
    assert page.total == len(page.log) > 1
    assert page.log[-1] == "rows: 5"
    assert "DliEmulator" in page.log[0]
