"""The Driver against the real emulator, in-process, with a recording fake of the Kubernetes API.

Every DLI call goes through ``httpx.ASGITransport`` to the emulator app; every status write goes
to ``FakeKube``, which stores it as a merge patch would and hands out increasing
``resourceVersion``s. Both write to one log, so a test can assert what happened in which order.
"""

from __future__ import annotations

import asyncio
import copy
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import httpx
import pytest
from starlette.applications import Starlette

from dli_operator import reconcile
from dli_operator.dli.retries import NO_RETRIES
from dli_operator.driver import Driver
from dli_operator.emulator.clock import FakeClock
from dli_operator.emulator.config import EmulatorConfig
from dli_operator.emulator.gateway import ConnectionDropped
from dli_operator.kubeapi import CREDENTIALS_TYPE, KubeApi, KubeApiError, Secret
from dli_operator.runtime import PolicyViolation, Runtime, Target
from dli_operator.settings import DliSettings, PolicySettings, ReconcileSettings, Settings

if TYPE_CHECKING:
    from conftest import LiveEmulator

NAMESPACE = "team"
ENDPOINT = "http://dli.emulator"
# Short, because the shared list view is real-time: every step here sees a fresh one.
POLL_SECONDS = 0.01
# Long enough for a handful of in-process steps to share one list view.
SHARED_POLL_SECONDS = 0.5
JAR = {"file": "obs://bucket/app.jar", "className": "org.example.Main", "queue": "q1"}
Log = list[tuple[str, ...]]


class FakeKube(KubeApi):
    """Stored DliBatchJobs and Secrets; status writes are merge patches on the stored object."""

    def __init__(self, log: Log) -> None:
        self.log = log
        self.objects: dict[str, dict[str, Any]] = {}
        self.secrets: dict[str, dict[str, str | bytes]] = {}
        self.secret_types: dict[str, str] = {}
        """Secret types by name; a Secret not listed here is a ``dli.dev/credentials`` one."""
        self.labels: dict[str, dict[str, str]] = {}
        """Namespace labels by namespace name."""
        self.version = 100
        self.fail_patches: list[int] = []
        """Numbers (from 1, counted from now) of the next status patches that fail."""
        self.patches = 0

    def add(self, name: str, spec: dict[str, Any]) -> None:
        self.version += 1
        self.objects[name] = {
            "apiVersion": "dli.dev/v1alpha1",
            "kind": "DliBatchJob",
            "metadata": {
                "name": name,
                "namespace": NAMESPACE,
                "uid": str(uuid.uuid4()),
                "generation": 1,
                "resourceVersion": str(self.version),
            },
            "spec": spec,
        }

    def body(self, name: str) -> dict[str, Any]:
        """What kopf would hand the handler now: a copy of the stored object."""
        return copy.deepcopy(self.objects[name])

    async def patch_status(
        self, namespace: str, name: str, status: dict[str, Any]
    ) -> dict[str, Any]:
        self.patches += 1
        if self.patches in self.fail_patches:
            self.log.append(("kube", "patch failed"))
            raise KubeApiError(f"PATCH {name}/status: connection reset", 0)
        stored = self.objects[name]
        _merge(stored.setdefault("status", {}), status)
        self.version += 1
        stored["metadata"]["resourceVersion"] = str(self.version)
        self.log.append(("kube", "patch", *sorted(status)))
        return copy.deepcopy(stored)

    async def read_secret(self, namespace: str, name: str) -> Secret | None:
        data = self.secrets.get(name)
        if data is None:
            return None
        raw = {k: v.encode() if isinstance(v, str) else v for k, v in data.items()}
        return Secret(self.secret_types.get(name, CREDENTIALS_TYPE), raw)

    async def namespace_labels(self, name: str) -> dict[str, str]:
        return dict(self.labels.get(name, {}))

    async def delete_job(self, namespace: str, name: str, uid: str) -> None:
        raise AssertionError("the driver never deletes a job")

    async def aclose(self) -> None:
        pass


def _merge(target: dict[str, Any], patch: dict[str, Any]) -> None:
    # RFC 7386: null deletes, objects merge, everything else (lists too) replaces.
    for key, value in patch.items():
        if value is None:
            target.pop(key, None)
        elif isinstance(value, dict) and isinstance(target.get(key), dict):
            _merge(target[key], value)
        else:
            target[key] = copy.deepcopy(value)


class Wire(httpx.AsyncBaseTransport):
    """The emulator app in-process, with a log of calls and two network faults of our own."""

    def __init__(self, app: Starlette, log: Log) -> None:
        self.inner = httpx.ASGITransport(app=app)
        self.log = log
        self.refuse_posts = 0
        """The next N POSTs fail to connect: they never reach the emulator."""

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path.split("/batches", 1)[1] or "/"
        self.log.append(("dli", request.method, "/batches" + path.rstrip("/")))
        if request.method == "POST" and self.refuse_posts:
            self.refuse_posts -= 1
            raise httpx.ConnectError("[Errno 111] Connection refused", request=request)
        try:
            return await self.inner.handle_async_request(request)
        except ConnectionDropped as exc:
            # What a socket client sees when the emulator cuts the connection.
            raise httpx.RemoteProtocolError(str(exc), request=request) from exc


class Harness:
    """One operator process (runtime + driver) over the fake cluster and the emulator."""

    def __init__(
        self,
        kube: FakeKube,
        wire: Wire | None,
        settings: Settings,
        control: httpx.AsyncClient,
        clock: FakeClock,
    ) -> None:
        self.kube, self.settings, self.control = kube, settings, control
        self.transport = wire
        self.fake_clock = clock
        self.events: list[tuple[str, str, str]] = []
        self.runtimes: list[Runtime] = []
        self.driver = self.restart()

    def restart(self) -> Driver:
        """A new operator process: nothing remembered but what is stored."""
        runtime = Runtime(
            self.settings, self.kube, transport=self.transport, retry_policy=NO_RETRIES
        )
        self.runtimes.append(runtime)
        policy = reconcile.Policy(retry_backoff_seconds=0.0, retry_backoff_max_seconds=0.0)
        self.driver = Driver(runtime, policy, clock=self.now)
        return self.driver

    async def later(self, seconds: float) -> None:
        """Move DLI's time on, and let the shared list view (on the real clock) go stale."""
        self.fake_clock.advance(seconds)
        await asyncio.sleep(self.settings.reconcile.poll_interval_seconds)

    def now(self) -> datetime:
        return datetime.fromtimestamp(self.fake_clock(), tz=UTC)

    @property
    def wire(self) -> Wire:
        assert self.transport is not None, "this harness talks to a live emulator"
        return self.transport

    def announce(self, kind: str, reason: str, message: str) -> None:
        self.events.append((kind, reason, message))

    def create(self, name: str = "etl", **spec: Any) -> str:
        self.kube.add(name, JAR | spec)
        return name

    async def step(self, name: str = "etl") -> float | None:
        return await self.driver.step(self.kube.body(name), self.announce)

    async def finalize(self, name: str = "etl") -> None:
        body = self.kube.body(name)
        body["metadata"]["deletionTimestamp"] = self.now().isoformat()
        await self.driver.finalize(body, self.announce)

    def status(self, name: str = "etl") -> dict[str, Any]:
        status: dict[str, Any] = self.kube.objects[name].get("status", {})
        return status

    def condition(self, kind: str, name: str = "etl") -> dict[str, Any]:
        return next(c for c in self.status(name)["conditions"] if c["type"] == kind)

    async def calls(self) -> dict[str, int]:
        body: dict[str, dict[str, int]] = (await self.control.get("/calls")).json()
        return body["calls"]

    async def jobs(self) -> list[dict[str, Any]]:
        body: dict[str, list[dict[str, Any]]] = (await self.control.get("/jobs")).json()
        return body["jobs"]

    async def fault(self, **spec: Any) -> None:
        response = await self.control.post("/faults", json=spec)
        assert response.status_code == 200, response.text

    async def aclose(self) -> None:
        for runtime in self.runtimes:
            for dli in runtime._dli.values():
                await dli.client.aclose()


@pytest.fixture
def log() -> Log:
    return []


@pytest.fixture
def settings(emulator_config: EmulatorConfig) -> Settings:
    return Settings(
        dli=DliSettings(
            endpoint=ENDPOINT,
            allow_insecure_endpoint=True,
            project_id=emulator_config.project_id,
            access_key=emulator_config.access_key,
            secret_key=emulator_config.secret_key,
            requests_per_second=1000.0,
            burst=1000,
        ),
        policy=PolicySettings(default_credentials_namespaces=[NAMESPACE]),
        reconcile=ReconcileSettings(
            poll_interval_seconds=POLL_SECONDS,
            error_backoff_seconds=1.0,
            secret_cache_seconds=0.0,
        ),
    )


@pytest.fixture
async def op(
    emulator_app: Starlette,
    settings: Settings,
    control: httpx.AsyncClient,
    fake_clock: FakeClock,
    log: Log,
) -> AsyncIterator[Harness]:
    harness = Harness(FakeKube(log), Wire(emulator_app, log), settings, control, fake_clock)
    yield harness
    await harness.aclose()


def dli_calls(log: Log) -> list[tuple[str, ...]]:
    return [entry[1:] for entry in log if entry[0] == "dli"]


# --- submitting exactly once --------------------------------------------------------------


async def test_the_intent_is_stored_before_the_create_call_and_the_batch_id_after(
    op: Harness, log: Log
) -> None:
    op.create()
    assert await op.step() == POLL_SECONDS
    assert log[0] == ("kube", "patch", "conditions", "observedGeneration", "phase", "startTime",
                      "submission")  # fmt: skip
    assert log[1] == ("dli", "POST", "/batches")
    assert log[2][:2] == ("kube", "patch")
    assert {"batchId", "submission", "attempts"} <= set(log[2][2:])
    assert len(log) == 3
    jobs = await op.jobs()
    status = op.status()
    assert status["batchId"] == jobs[0]["id"]
    assert "submission" not in status
    assert (status["phase"], status["state"]) == ("Starting", "starting")
    assert status["attempts"][0]["jobName"] == jobs[0]["name"]
    assert op.condition("Submitted")["reason"] == "Submitted"


async def test_the_job_is_followed_until_it_succeeds_and_then_left_alone(
    op: Harness, log: Log
) -> None:
    op.create()
    await op.step()
    await op.later(2)
    assert await op.step() == POLL_SECONDS
    assert (op.status()["phase"], op.status()["state"]) == ("Running", "running")
    await op.later(10)
    assert await op.step() is None
    assert op.status()["phase"] == "Succeeded"
    assert op.condition("Complete")["status"] == "True"
    calls = len(log)
    assert await op.step() is None
    assert len(log) == calls, "a finished job costs no call at all"


async def test_a_crash_between_the_create_call_and_the_status_write_adopts_the_job(
    op: Harness, log: Log
) -> None:
    op.create()
    op.kube.fail_patches = [2]
    with pytest.raises(KubeApiError):
        await op.step()
    assert "submission" in op.status()
    assert "batchId" not in op.status()
    op.restart()
    log.clear()
    assert await op.step() == POLL_SECONDS
    assert dli_calls(log) == [("GET", "/batches")]
    assert (await op.calls())["create"] == 1
    jobs = await op.jobs()
    assert len(jobs) == 1
    assert op.status()["batchId"] == jobs[0]["id"]
    assert op.condition("Submitted")["reason"] == "Adopted"
    assert [a["attempt"] for a in op.status()["attempts"]] == [1]


async def test_an_adopted_attempt_that_died_meanwhile_is_retried(op: Harness) -> None:
    conf = {"spark.dli.emulator.outcome": "dead"}
    op.create(conf=conf, autoRecovery=True, maxRetryTimes=2)
    op.kube.fail_patches = [2]
    with pytest.raises(KubeApiError):
        await op.step()
    await op.later(60)
    op.restart()
    assert await op.step() == POLL_SECONDS
    status = op.status()
    assert (status["phase"], status["retries"]) == ("Recovering", 1)
    await op.step()
    assert [a["attempt"] for a in op.status()["attempts"]] == [1, 2]
    assert len(await op.jobs()) == 2


@pytest.mark.parametrize(
    ("fault", "created"),
    [
        pytest.param(
            {"action": "drop", "when": "after"},
            True,
            id="a connection dropped after DLI created the job is adopted",
        ),
        pytest.param(
            {"action": "respond", "status": 500, "when": "after"},
            True,
            id="a server error after DLI created the job is adopted",
        ),
        pytest.param(
            {"action": "respond", "status": 502},
            False,
            id="a gateway error before DLI saw the job is posted again after the lookup",
        ),
    ],
)
async def test_an_ambiguous_create_is_looked_up_before_any_new_post(
    op: Harness, log: Log, fault: dict[str, Any], created: bool
) -> None:
    op.create()
    await op.fault(operation="create", **fault)
    assert await op.step() == op.settings.reconcile.error_backoff_seconds
    assert op.status()["phase"] == "Submitting"
    assert op.condition("Submitted")["reason"] == "DliUnavailable"
    assert ("Warning", "DliUnavailable") in [e[:2] for e in op.events]
    log.clear()
    assert await op.step() == POLL_SECONDS
    jobs = await op.jobs()
    assert len(jobs) == 1
    assert op.status()["batchId"] == jobs[0]["id"]
    if created:
        assert dli_calls(log) == [("GET", "/batches")]
        assert op.condition("Submitted")["reason"] == "Adopted"
    else:
        assert dli_calls(log) == [("GET", "/batches"), ("POST", "/batches")]
        assert op.condition("Submitted")["reason"] == "Submitted"


async def test_a_create_that_never_connected_is_posted_again_without_a_lookup(
    op: Harness, log: Log
) -> None:
    op.create()
    op.wire.refuse_posts = 1
    assert await op.step() == op.settings.reconcile.error_backoff_seconds
    assert "submission" in op.status()
    log.clear()
    assert await op.step() == POLL_SECONDS
    assert dli_calls(log) == [("POST", "/batches")]
    assert len(await op.jobs()) == 1
    assert op.condition("Submitted")["reason"] == "Submitted"


async def test_a_new_process_looks_up_even_an_intent_that_never_connected(
    op: Harness, log: Log
) -> None:
    op.create()
    op.wire.refuse_posts = 1
    await op.step()
    op.restart()
    log.clear()
    await op.step()
    assert dli_calls(log) == [("GET", "/batches"), ("POST", "/batches")]
    assert len(await op.jobs()) == 1


async def test_a_stale_body_from_kopf_never_submits_the_job_again(op: Harness, log: Log) -> None:
    op.create()
    before = op.kube.body("etl")
    await op.step()
    log.clear()
    await op.driver.step(before, op.announce)
    assert [call[0] for call in dli_calls(log)] == ["GET"]
    assert len(await op.jobs()) == 1


# --- errors -------------------------------------------------------------------------------


async def test_a_missing_queue_fails_the_job_with_the_dli_code(op: Harness, log: Log) -> None:
    op.create(queue="nope")
    assert await op.step() is None
    status = op.status()
    assert (status["phase"], status["reason"]) == ("Failed", "SubmitRejected")
    assert status["message"].startswith("DLI.0002: ")
    assert "nope" in status["message"]
    assert op.condition("Failed")["status"] == "True"
    assert ("Warning", "SubmitRejected", status["message"]) in op.events
    log.clear()
    assert await op.step() is None
    assert log == []


async def test_a_throttled_create_waits_for_retry_after_and_posts_again_without_a_lookup(
    op: Harness, log: Log
) -> None:
    op.create()
    await op.fault(operation="create", action="throttle", rate=1, retryAfter=3, times=1)
    assert await op.step() == 3.0
    assert op.status()["phase"] == "Submitting"
    assert op.condition("Submitted")["reason"] == "RateLimited"
    log.clear()
    assert await op.step() == POLL_SECONDS
    assert dli_calls(log) == [("POST", "/batches")]
    assert len(await op.jobs()) == 1


async def test_a_rejected_signature_blocks_the_job_until_the_secret_is_fixed(
    op: Harness, emulator_config: EmulatorConfig
) -> None:
    op.kube.secrets["dli"] = {"accessKey": emulator_config.access_key, "secretKey": "wrong"}
    op.create(credentialsSecretRef={"name": "dli"})
    assert await op.step() == op.driver.blocked_retry
    status = op.status()
    assert status["phase"] == "Submitting"
    assert "reason" not in status, "not a failure: the user can fix it"
    submitted = op.condition("Submitted")
    assert (submitted["status"], submitted["reason"]) == ("False", "AuthenticationFailed")
    assert "APIG.0301" in submitted["message"]
    assert "wrong" not in str(status) + str(op.events)
    op.kube.secrets["dli"]["secretKey"] = emulator_config.secret_key
    assert await op.step() == POLL_SECONDS
    assert op.condition("Submitted")["reason"] == "Submitted"
    assert len(await op.jobs()) == 1


async def test_a_missing_secret_reports_credentials_unavailable_without_calling_dli(
    op: Harness, log: Log
) -> None:
    op.create(credentialsSecretRef={"name": "absent"})
    assert await op.step() == op.driver.blocked_retry
    status = op.status()
    assert status["phase"] == "Pending"
    submitted = op.condition("Submitted")
    assert submitted["reason"] == "CredentialsUnavailable"
    assert f"Secret {NAMESPACE}/absent" in submitted["message"]
    assert dli_calls(log) == []
    assert ("Warning", "CredentialsUnavailable") in [e[:2] for e in op.events]


async def test_a_secret_without_the_secret_key_names_the_missing_key(op: Harness) -> None:
    op.kube.secrets["dli"] = {"accessKey": "AK"}
    op.create(credentialsSecretRef={"name": "dli"})
    await op.step()
    assert "'secretKey'" in op.condition("Submitted")["message"]


# --- tenancy: nothing is sent where the policy does not allow it (issue 11) -----------------


FOREIGN = "https://attacker.example"
OTHER_PROJECT = "fedcba9876543210fedcba9876543210"


class Spy(Wire):
    """The emulator for its own host; any other host is recorded and answered by nobody."""

    def __init__(self, app: Starlette, log: Log) -> None:
        super().__init__(app, log)
        self.foreign: list[httpx.Request] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if request.url.host != httpx.URL(ENDPOINT).host:
            self.foreign.append(request)
            return httpx.Response(200, json={})
        return await super().handle_async_request(request)


@pytest.fixture
async def spied(
    emulator_app: Starlette,
    settings: Settings,
    control: httpx.AsyncClient,
    fake_clock: FakeClock,
    log: Log,
) -> AsyncIterator[Harness]:
    harness = Harness(FakeKube(log), Spy(emulator_app, log), settings, control, fake_clock)
    yield harness
    await harness.aclose()


def refused(op: Harness, log: Log, rule: str, name: str = "etl") -> str:
    """Assert the job is held by a policy refusal naming ``rule``, with nothing sent to DLI."""
    submitted = op.condition("Submitted", name)
    assert (submitted["status"], submitted["reason"]) == ("False", "PolicyDenied")
    assert rule in submitted["message"]
    assert ("Warning", "PolicyDenied") in [e[:2] for e in op.events]
    assert dli_calls(log) == []
    assert isinstance(op.wire, Spy)
    assert op.wire.foreign == []
    return str(submitted["message"])


def with_policy(op: Harness, **policy: Any) -> None:
    """Restart the harness's operator with these policy settings."""
    current = op.settings.policy.model_copy(update=policy)
    op.settings = op.settings.model_copy(update={"policy": current})
    op.restart()


async def test_a_foreign_endpoint_gets_neither_the_default_credentials_nor_any_request(
    spied: Harness, log: Log
) -> None:
    spied.create(endpoint=FOREIGN)
    assert await spied.step() == spied.driver.blocked_retry
    message = refused(spied, log, "DLI_OPERATOR_POLICY__ALLOWED_ENDPOINTS")
    assert FOREIGN in message


async def test_a_foreign_endpoint_is_refused_even_with_the_jobs_own_secret(
    spied: Harness, log: Log, emulator_config: EmulatorConfig
) -> None:
    spied.kube.secrets["dli"] = {
        "accessKey": emulator_config.access_key,
        "secretKey": emulator_config.secret_key,
    }
    spied.create(endpoint=FOREIGN, credentialsSecretRef={"name": "dli"})
    await spied.step()
    refused(spied, log, "DLI_OPERATOR_POLICY__ALLOWED_ENDPOINTS")


async def test_a_region_the_admin_did_not_allow_is_refused(spied: Harness, log: Log) -> None:
    spied.create(region="ap-southeast-1")
    await spied.step()
    assert "https://dli.ap-southeast-1.myhuaweicloud.com" in refused(
        spied, log, "DLI_OPERATOR_POLICY__ALLOWED_REGIONS"
    )


async def test_the_default_credentials_never_serve_another_project(
    spied: Harness, log: Log
) -> None:
    spied.create(projectId=OTHER_PROJECT)
    await spied.step()
    refused(spied, log, "DLI_OPERATOR_DLI__PROJECT_ID")


async def test_the_default_credentials_serve_only_the_namespaces_the_admin_chose(
    spied: Harness, log: Log
) -> None:
    with_policy(spied, default_credentials_namespaces=["someone-else"])
    spied.create()
    await spied.step()
    refused(spied, log, "DLI_OPERATOR_POLICY__DEFAULT_CREDENTIALS_NAMESPACES")


async def test_a_namespace_selector_admits_a_labelled_namespace(spied: Harness, log: Log) -> None:
    with_policy(
        spied,
        default_credentials_namespaces=[],
        default_credentials_namespace_selector="dli.dev/default-credentials=allowed",
    )
    spied.create()
    await spied.step()
    refused(spied, log, "DLI_OPERATOR_POLICY__DEFAULT_CREDENTIALS_NAMESPACE_SELECTOR")
    spied.kube.labels[NAMESPACE] = {"dli.dev/default-credentials": "allowed"}
    assert await spied.step() == POLL_SECONDS
    assert spied.condition("Submitted")["reason"] == "Submitted"


async def test_a_project_the_namespace_may_not_target_is_refused(
    spied: Harness, log: Log, emulator_config: EmulatorConfig
) -> None:
    with_policy(spied, namespace_projects={NAMESPACE: [OTHER_PROJECT]})
    spied.create()
    await spied.step()
    refused(spied, log, "DLI_OPERATOR_POLICY__NAMESPACE_PROJECTS")


async def test_an_ordinary_secret_is_never_read_into_a_request(
    spied: Harness, log: Log, emulator_config: EmulatorConfig
) -> None:
    spied.kube.secrets["db"] = {
        "accessKey": emulator_config.access_key,
        "secretKey": emulator_config.secret_key,
    }
    spied.kube.secret_types["db"] = "Opaque"
    spied.create(credentialsSecretRef={"name": "db"})
    await spied.step()
    message = refused(spied, log, "dli.dev/credentials")
    assert "Opaque" in message


async def test_free_key_names_are_refused_so_no_other_value_of_a_secret_is_sent(
    spied: Harness, log: Log, emulator_config: EmulatorConfig
) -> None:
    spied.kube.secrets["dli"] = {
        "accessKey": emulator_config.access_key,
        "secretKey": emulator_config.secret_key,
        "password": "hunter2",
    }
    spied.create(credentialsSecretRef={"name": "dli", "secretKeyKey": "password"})
    await spied.step()
    refused(spied, log, "secretKeyKey")


async def test_a_recorded_target_is_held_to_the_policy_too(spied: Harness) -> None:
    runtime = spied.driver.runtime
    with pytest.raises(PolicyViolation, match="ALLOWED_ENDPOINTS"):
        await runtime.dli_at(NAMESPACE, Target(FOREIGN, OTHER_PROJECT, None))
    assert spied.wire.foreign == []


async def test_a_binary_value_the_job_does_not_use_is_ignored(
    op: Harness, emulator_config: EmulatorConfig
) -> None:
    op.kube.secrets["dli"] = {
        "accessKey": emulator_config.access_key,
        "secretKey": emulator_config.secret_key,
        "keystore.p12": b"\x30\x82\xff\xfe\x00",
    }
    op.create(credentialsSecretRef={"name": "dli"})
    assert await op.step() == POLL_SECONDS
    assert op.condition("Submitted")["reason"] == "Submitted"


async def test_a_binary_access_key_is_a_clear_condition(op: Harness, log: Log) -> None:
    op.kube.secrets["dli"] = {"accessKey": b"\xff\xfe", "secretKey": "sk"}
    op.create(credentialsSecretRef={"name": "dli"})
    assert await op.step() == op.driver.blocked_retry
    submitted = op.condition("Submitted")
    assert submitted["reason"] == "CredentialsUnavailable"
    assert "'accessKey'" in submitted["message"]
    assert "UTF-8" in submitted["message"]
    assert dli_calls(log) == []


async def test_the_access_key_echoed_in_an_apig_0301_message_is_masked(
    op: Harness, log: Log
) -> None:
    unknown = "QWERTYUIOPASDFGHJKLZ"
    op.kube.secrets["dli"] = {"accessKey": unknown, "secretKey": "some-secret-key"}
    op.create(credentialsSecretRef={"name": "dli"})
    await op.step()
    submitted = op.condition("Submitted")
    assert submitted["reason"] == "AuthenticationFailed"
    assert "APIG.0301" in submitted["message"]
    assert "***" in submitted["message"]
    assert unknown not in str(op.status()) + str(op.events)


# --- observing ----------------------------------------------------------------------------


async def test_one_list_call_observes_many_jobs(op: Harness, log: Log) -> None:
    reconcile_settings = op.settings.reconcile.model_copy(
        update={"poll_interval_seconds": SHARED_POLL_SECONDS}
    )
    op.settings = op.settings.model_copy(update={"reconcile": reconcile_settings})
    op.restart()
    names = [op.create(f"job-{n}") for n in range(5)]
    for name in names:
        await op.step(name)
    await op.later(2)
    for name in names:
        await op.step(name)
    await asyncio.sleep(SHARED_POLL_SECONDS)
    log.clear()
    for name in names:
        assert await op.step(name) == SHARED_POLL_SECONDS
    assert dli_calls(log) == [("GET", "/batches")]
    assert {op.status(name)["phase"] for name in names} == {"Running"}


async def test_a_job_the_list_does_not_show_is_fetched_by_id(op: Harness, log: Log) -> None:
    op.create()
    await op.step()
    await op.later(2)
    await op.fault(operation="list", action="respond", status=200,
                   body={"from": 0, "total": 0, "sessions": []})  # fmt: skip
    log.clear()
    await op.step()
    batch_id = op.status()["batchId"]
    assert dli_calls(log) == [("GET", "/batches"), ("GET", f"/batches/{batch_id}")]
    assert op.status()["state"] == "running"


# --- cancelling ---------------------------------------------------------------------------


async def test_deleting_a_running_job_cancels_it_in_dli(op: Harness, log: Log) -> None:
    op.create()
    await op.step()
    await op.later(2)
    await op.step()
    log.clear()
    await op.finalize()
    batch_id = op.status()["batchId"]
    assert dli_calls(log) == [("DELETE", f"/batches/{batch_id}")]
    assert op.status()["phase"] == "Cancelled"
    assert (await op.jobs())[0]["state"] == "dead"


async def test_cancelling_a_batch_that_already_finished_counts_as_done(
    op: Harness, log: Log
) -> None:
    op.create()
    await op.step()
    await op.later(60)
    log.clear()
    await op.finalize()
    batch_id = op.status()["batchId"]
    assert dli_calls(log) == [("DELETE", f"/batches/{batch_id}")]
    body: dict[str, Any] = (await op.control.get("/calls")).json()
    assert body["outcomes"]["cancel"] == {"400": 1}
    assert (await op.jobs())[0]["state"] == "success"


async def test_deleting_a_job_with_the_orphan_policy_makes_no_dli_call(
    op: Harness, log: Log
) -> None:
    op.create(deletionPolicy="Orphan")
    await op.step()
    log.clear()
    await op.finalize()
    assert log == []
    assert (await op.jobs())[0]["state"] == "starting"


async def test_deleting_during_an_unsent_intent_drops_it_without_posting(
    op: Harness, log: Log
) -> None:
    op.create()
    op.wire.refuse_posts = 1
    await op.step()
    log.clear()
    await op.finalize()
    assert dli_calls(log) == []
    assert op.status()["phase"] == "Cancelled"


async def test_deleting_during_an_ambiguous_create_adopts_the_job_then_cancels_it(
    op: Harness, log: Log
) -> None:
    op.create()
    await op.fault(operation="create", action="drop", when="after")
    await op.step()
    log.clear()
    await op.finalize()
    batch_id = (await op.jobs())[0]["id"]
    assert dli_calls(log) == [("GET", "/batches"), ("DELETE", f"/batches/{batch_id}")]
    assert op.status()["phase"] == "Cancelled"


async def test_a_create_that_hangs_after_dli_took_the_job_is_adopted_not_resent(
    live_emulator: LiveEmulator, settings: Settings, log: Log
) -> None:
    dli_settings = settings.dli.model_copy(
        update={"endpoint": live_emulator.url, "read_timeout_seconds": 0.5}
    )
    live = settings.model_copy(update={"dli": dli_settings})
    async with httpx.AsyncClient(base_url=live_emulator.url + "/_emulator") as control:
        op = Harness(FakeKube(log), None, live, control, FakeClock())
        try:
            op.create()
            await op.fault(operation="create", action="hang", when="after")
            assert await op.step() == live.reconcile.error_backoff_seconds
            assert "may have reached DLI" in op.condition("Submitted")["message"]
            assert await op.step() == POLL_SECONDS
        finally:
            await op.aclose()
        assert op.condition("Submitted")["reason"] == "Adopted"
        assert (await op.calls())["create"] == 1
        assert [job["id"] for job in await op.jobs()] == [op.status()["batchId"]]
