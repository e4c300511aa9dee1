"""The Driver against the real emulator, in-process, with a recording fake of the Kubernetes API.

Every DLI call goes through ``httpx.ASGITransport`` to the emulator app; every status write goes
to ``FakeKube``, which stores it as a merge patch would and hands out increasing
``resourceVersion``s. Both write to one log, so a test can assert what happened in which order.
"""

from __future__ import annotations

import asyncio
import copy
import uuid
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import httpx
import pytest
from starlette.applications import Starlette

from dli_operator import reconcile
from dli_operator.dli.retries import NO_RETRIES
from dli_operator.driver import Driver, fence
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
        self.terminating: set[str] = set()
        """Namespaces being deleted."""

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
        self,
        namespace: str,
        name: str,
        status: dict[str, Any],
        *,
        resource_version: str | None = None,
    ) -> dict[str, Any]:
        self.patches += 1
        if self.patches in self.fail_patches:
            self.log.append(("kube", "patch failed"))
            raise KubeApiError(f"PATCH {name}/status: connection reset", 0)
        stored = self.objects[name]
        if (
            resource_version is not None
            and resource_version != stored["metadata"]["resourceVersion"]
        ):
            # What the API server answers a merge patch whose resourceVersion is stale.
            self.log.append(("kube", "patch conflict"))
            raise KubeApiError(f"PATCH {name}/status: 409 the object has been modified", 409)
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

    async def namespace_terminating(self, namespace: str) -> bool:
        return namespace in self.terminating

    async def get_object(self, plural: str, namespace: str, name: str) -> dict[str, Any] | None:
        stored = self.objects.get(name)
        return copy.deepcopy(stored) if stored is not None else None

    def touch(self, name: str) -> None:
        """What kopf's own patches (finalizer, annotations) do: a new version, same status."""
        self.version += 1
        self.objects[name]["metadata"]["resourceVersion"] = str(self.version)

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
        self.hold_posts = 0
        """The next N POSTs time out at the client and reach DLI only on ``deliver_held()``."""
        self.held: list[httpx.Request] = []

    async def deliver_held(self) -> None:
        """A slow back end finally carries out the creates whose clients gave up (late creates)."""
        held, self.held = self.held, []
        for request in held:
            await self.inner.handle_async_request(request)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path.split("/batches", 1)[1] or "/"
        self.log.append(("dli", request.method, "/batches" + path.rstrip("/")))
        if request.method == "POST" and self.refuse_posts:
            self.refuse_posts -= 1
            raise httpx.ConnectError("[Errno 111] Connection refused", request=request)
        if request.method == "POST" and self.hold_posts:
            self.hold_posts -= 1
            await request.aread()
            self.held.append(request)
            raise httpx.ReadTimeout("timed out", request=request)
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

    async def finalize(self, name: str = "etl", *, since: float = 0.0) -> float | None:
        """Run the finalizer as for a deletion requested ``since`` seconds ago."""
        body = self.kube.body(name)
        asked = self.now() - timedelta(seconds=since)
        body["metadata"]["deletionTimestamp"] = asked.isoformat()
        return await self.driver.finalize(body, self.announce)

    def edit(self, name: str = "etl", **spec: Any) -> None:
        """A user edits mutable spec fields (a new generation)."""
        stored = self.kube.objects[name]
        stored["spec"].update(spec)
        stored["metadata"]["generation"] += 1
        self.kube.version += 1
        stored["metadata"]["resourceVersion"] = str(self.kube.version)

    def status(self, name: str = "etl") -> dict[str, Any]:
        status: dict[str, Any] = self.kube.objects[name].get("status", {})
        return status

    def condition(self, kind: str, name: str = "etl") -> dict[str, Any]:
        return next(c for c in self.status(name)["conditions"] if c["type"] == kind)

    def kstatus(self, name: str = "etl") -> dict[str, tuple[str, str]]:
        """kstatus's conditions of the stored job: type -> (status, reason)."""
        kinds = ("Ready", "Reconciling", "Stalled")
        return {
            k: (self.condition(k, name)["status"], self.condition(k, name)["reason"]) for k in kinds
        }

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
                      "submission", "target")  # fmt: skip
    op.kube.objects["etl"]["status"]
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
    if not created:
        # Not found yet: DLI may still create it, so nothing is sent until the settle passed.
        assert dli_calls(log) == [("GET", "/batches")]
        assert op.condition("Submitted")["reason"] == "WaitingForLateCreate"
        await op.later(op.driver.settle_seconds)
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
    assert dli_calls(log) == [("GET", "/batches")], "it cannot know the call never connected"
    await op.later(op.driver.settle_seconds)
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
    assert op.kstatus()["Stalled"] == ("True", "AuthenticationFailed")
    assert op.kstatus()["Reconciling"][0] == "False"
    op.kube.secrets["dli"]["secretKey"] = emulator_config.secret_key
    assert await op.step() == POLL_SECONDS
    assert op.condition("Submitted")["reason"] == "Submitted"
    assert len(await op.jobs()) == 1
    assert {k: v[0] for k, v in op.kstatus().items()} == {
        "Ready": "False",
        "Reconciling": "True",
        "Stalled": "False",
    }


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
    assert op.kstatus() == {
        "Ready": ("False", "CredentialsUnavailable"),
        "Reconciling": ("False", "CredentialsUnavailable"),
        "Stalled": ("True", "CredentialsUnavailable"),
    }
    stalled = op.condition("Stalled")
    assert f"Secret {NAMESPACE}/absent" in stalled["message"]


async def test_a_stall_is_recorded_in_the_write_that_records_its_reason_and_no_other(
    op: Harness, emulator_config: EmulatorConfig
) -> None:
    op.create(credentialsSecretRef={"name": "dli"})
    await op.step()
    assert op.kube.patches == 1, "the stall rides on the write of CredentialsUnavailable"
    assert op.kstatus()["Stalled"][0] == "True"
    assert await op.step() == op.driver.blocked_retry
    assert op.kube.patches == 1, "a job still stalled writes nothing"
    op.kube.secrets["dli"] = {
        "accessKey": emulator_config.access_key,
        "secretKey": emulator_config.secret_key,
    }
    assert await op.step() == POLL_SECONDS
    assert op.kstatus()["Stalled"] == ("False", "Starting")
    assert op.kstatus()["Reconciling"][0] == "True"
    assert len(await op.jobs()) == 1


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
    assert op.kstatus(name)["Stalled"] == ("True", "PolicyDenied")
    assert op.kstatus(name)["Reconciling"] == ("False", "PolicyDenied")
    assert rule in op.condition("Stalled", name)["message"]
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


async def test_a_job_the_policy_refuses_turns_back_to_reconciling_once_it_is_admitted(
    spied: Harness, log: Log
) -> None:
    with_policy(spied, default_credentials_namespaces=["someone-else"])
    spied.create()
    await spied.step()
    refused(spied, log, "DLI_OPERATOR_POLICY__DEFAULT_CREDENTIALS_NAMESPACES")
    with_policy(spied, default_credentials_namespaces=[NAMESPACE])
    assert await spied.step() == POLL_SECONDS
    assert spied.condition("Submitted")["reason"] == "Submitted"
    assert spied.kstatus()["Stalled"][0] == "False"
    assert spied.kstatus()["Reconciling"][0] == "True"


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
    # DLI answers 400 to the cancel; only the batch's state tells "finished" from "refused".
    assert dli_calls(log) == [("DELETE", f"/batches/{batch_id}"), ("GET", f"/batches/{batch_id}")]
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


# --- exactly once under every fault (issue 10) ---------------------------------------------


def gate_limiter(runtime: Runtime) -> asyncio.Event:
    """Hold every DLI request slot of ``runtime`` until the returned event is set."""
    gate = asyncio.Event()
    original = runtime._build

    def build(*args: Any, **kwargs: Any) -> Any:
        dli = original(*args, **kwargs)
        acquire = dli.limiter.acquire

        async def held(*, urgent: bool = False) -> float:
            await gate.wait()
            return await acquire(urgent=urgent)

        dli.limiter.acquire = held  # type: ignore[method-assign]
        return dli

    runtime._build = build  # type: ignore[method-assign]
    return gate


async def held_at_the_gate(
    op: Harness, owned: Callable[[], bool] | None = None
) -> tuple[asyncio.Event, asyncio.Future[float | None]]:
    """A step of ``etl`` by ``op.driver`` that stored its intent and waits for a request slot:
    the gate that lets it on, and the step."""
    gate = gate_limiter(op.driver.runtime)
    extra = {} if owned is None else {"owned": owned}
    waiting = asyncio.ensure_future(op.driver.step(op.kube.body("etl"), op.announce, **extra))
    for _ in range(50):
        await asyncio.sleep(0)
    assert "submission" in op.status()
    return gate, waiting


async def test_ha_handover_a_replica_that_lost_the_claim_never_posts(op: Harness) -> None:
    op.create()
    # The old replica stores the intent and waits for a request slot...
    gate, waiting = await held_at_the_gate(op)
    # ...while the new active replica takes the job over and submits the attempt.
    new = op.restart()
    await new.step(op.kube.body("etl"), op.announce)
    gate.set()
    await waiting
    # The old replica's batch id write found the status changed (the new replica's lookup
    # note): not stored, so the next step looks the job up and adopts it.
    await new.step(op.kube.body("etl"), op.announce)
    jobs = await op.jobs()
    assert len(jobs) == 1, f"one attempt became {len(jobs)} DLI batches"
    assert op.status()["batchId"] == jobs[0]["id"]


async def test_ha_handover_a_stopped_replica_never_posts(op: Harness) -> None:
    op.create()
    stopped = False
    gate, waiting = await held_at_the_gate(op, owned=lambda: not stopped)
    stopped = True  # the job's shard moved away while it waited for a slot
    gate.set()
    await waiting
    assert (await op.calls()).get("create", 0) == 0
    op.restart()
    await op.step()
    assert len(await op.jobs()) == 1


async def test_a_notice_written_while_a_step_waits_for_its_slot_does_not_cost_its_turn(
    op: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    # chaos pause-resume (2026-12-07): another replica's notice of a wait moved the status
    # while this step slept in the rate limiter; the claim met a conflict and the job went to
    # the back of the queue again. The turn is kept: the step claims the fresh status and posts.
    monkeypatch.setattr(fence, "QUEUE_NOTICE_SECONDS", -1.0)  # any wait is a queue: no claim yet
    op.create()
    gate, waiting = await held_at_the_gate(op)
    other = op.restart()
    await other.show_wait(op.kube.body("etl"), op.announce, "waiting: about 9s, 3 ahead")
    assert "about 9s" in op.condition("Submitted")["message"]
    gate.set()
    await waiting
    assert (await op.calls()).get("create", 0) == 1
    assert op.status()["batchId"] == (await op.jobs())[0]["id"]


async def test_a_notice_written_while_the_create_call_is_out_is_kept_beside_the_batch_id(
    op: Harness,
) -> None:
    # The accepted write met a conflict (another replica's notice of a wait): the batch id is
    # stored on the fresh status at once, not left to a later step's lookup (chaos
    # pause-resume, 2026-12-07: a job parked for that lookup showed Starting after DLI ended it).
    op.create()
    original = op.driver.runtime._build

    def build(*args: Any, **kwargs: Any) -> Any:
        dli = original(*args, **kwargs)
        create = dli.client.create_batch

        async def noticed_meanwhile(request: Any) -> Any:
            created = await create(request)
            op.condition("Submitted")["message"] = "waiting: about 9s, 3 ahead"
            op.kube.touch("etl")
            return created

        dli.client.create_batch = noticed_meanwhile  # type: ignore[method-assign]
        return dli

    op.driver.runtime._build = build  # type: ignore[method-assign]
    await op.step()
    assert op.status()["batchId"] == (await op.jobs())[0]["id"]
    assert (await op.calls()) == {"create": 1}


async def test_a_step_whose_intent_was_claimed_meanwhile_gives_its_turn_up(
    op: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(fence, "QUEUE_NOTICE_SECONDS", -1.0)
    op.create()
    gate, waiting = await held_at_the_gate(op)
    sub = op.status()["submission"]
    assert sub.get("sentAt") is None
    # Another replica claimed the same intent (its create may be on its way to DLI).
    sub.update(claim="f00d", sentAt=sub["requestedAt"])
    op.kube.touch("etl")
    gate.set()
    await waiting
    assert (await op.calls()).get("create", 0) == 0
    assert op.status()["submission"]["claim"] == "f00d"


async def test_stale_never_sent_memory_is_void_once_the_stored_intent_changed(
    op: Harness,
) -> None:
    op.create()
    first = op.driver
    op.wire.refuse_posts = 1
    await first.step(op.kube.body("etl"), op.announce)  # never connected: remembered as unsent
    # Another process posts the attempt and dies before it stores the batch id.
    second = op.restart()
    op.kube.fail_patches = [op.kube.patches + 2]  # the claim, then the batch id
    await op.later(600)
    with pytest.raises(KubeApiError):
        await second.step(op.kube.body("etl"), op.announce)
    assert len(await op.jobs()) == 1
    await first.step(op.kube.body("etl"), op.announce)
    jobs = await op.jobs()
    assert len(jobs) == 1, f"one attempt became {len(jobs)} DLI batches"
    assert op.status()["batchId"] == jobs[0]["id"]


async def test_a_late_create_after_an_ambiguous_post_is_adopted_not_posted_again(
    op: Harness,
) -> None:
    op.create()
    op.wire.hold_posts = 1
    await op.step()
    assert "may have reached DLI" in op.condition("Submitted")["message"]
    await op.later(5)
    await op.step()  # the lookup finds nothing yet: DLI is slow
    await op.wire.deliver_held()
    await op.later(5)
    await op.step()
    jobs = await op.jobs()
    assert len(jobs) == 1, f"one attempt became {len(jobs)} DLI batches"
    assert op.status()["batchId"] == jobs[0]["id"]
    assert op.condition("Submitted")["reason"] == "Adopted"


async def test_a_delete_during_the_settle_period_finds_and_cancels_the_late_job(
    op: Harness,
) -> None:
    op.create()
    op.wire.hold_posts = 1
    await op.step()
    await op.later(5)
    assert await op.finalize() is not None, "the finalizer must wait for a late create"
    await op.wire.deliver_held()
    await op.later(5)
    assert await op.finalize() is None
    jobs = await op.jobs()
    assert [job["state"] for job in jobs] == ["dead"], "the late job must be cancelled"
    assert op.status()["phase"] == "Cancelled"


async def test_a_suspend_during_the_settle_period_finds_and_cancels_the_late_job(
    op: Harness,
) -> None:
    op.create()
    op.wire.hold_posts = 1
    await op.step()
    op.edit(suspend=True)
    await op.later(5)
    await op.step()
    assert op.status()["phase"] != "Suspended", "the intent may still become a DLI job"
    await op.wire.deliver_held()
    await op.later(5)
    await op.step()
    await op.step()
    assert [job["state"] for job in await op.jobs()] == ["dead"]
    assert op.status()["phase"] == "Suspended"


async def test_adoption_finds_the_job_whatever_the_operator_clock_says(op: Harness) -> None:
    op.create()
    op.kube.fail_patches = [2]
    skew = timedelta(hours=1)
    op.driver.clock = lambda: op.now() + skew  # the operator's clock runs an hour ahead
    with pytest.raises(KubeApiError):
        await op.step()
    op.restart().clock = lambda: op.now() + skew
    await op.step()
    jobs = await op.jobs()
    assert len(jobs) == 1, f"one attempt became {len(jobs)} DLI batches"
    assert op.condition("Submitted")["reason"] == "Adopted"


async def test_editing_the_project_mid_flight_keeps_the_recorded_target(op: Harness) -> None:
    op.create()
    await op.step()
    await op.later(2)
    await op.step()
    assert op.status()["phase"] == "Running"
    op.edit(projectId="f" * 32)
    await op.later(1)
    await op.step()
    assert op.status()["phase"] == "Running"
    await op.finalize()
    assert [job["state"] for job in await op.jobs()] == ["dead"], "the cancel missed the job"
    assert (await op.calls())["create"] == 1


async def test_a_log_line_longer_than_the_status_allows_does_not_wedge_the_job(
    op: Harness,
) -> None:
    op.create()
    await op.step()
    await op.later(60)
    batch = (await op.jobs())[0]
    huge = {**_session(batch), "state": "success", "log": ["x" * 10_000], "appId": "a" * 300}
    page = {"from": 0, "total": 1, "sessions": [huge]}
    await op.fault(operation="list", action="respond", status=200, body=page, times=5)
    await op.fault(operation="show", action="respond", status=200, body=huge, times=5)
    assert await op.step() is None
    assert op.status()["phase"] == "Succeeded"


async def test_a_rejected_create_with_a_huge_message_fails_once_and_never_posts_again(
    op: Harness,
) -> None:
    op.create()
    body = {"error_code": "DLI.0001", "error_msg": "bad parameter " + "y" * 40_000}
    await op.fault(operation="create", action="respond", status=400, body=body)
    for _ in range(3):
        await op.step()
    assert (await op.calls())["create"] == 1
    assert op.status()["phase"] == "Failed"
    assert op.status()["message"].startswith("DLI.0001: bad parameter")


async def test_a_refused_cancel_is_confirmed_before_the_attempt_counts_as_stopped(
    op: Harness,
) -> None:
    op.create()
    await op.step()
    await op.later(2)
    await op.step()
    body = {"error_code": "DLI.0001", "error_msg": "the job cannot be cancelled right now"}
    await op.fault(operation="cancel", action="respond", status=400, body=body)
    op.edit(suspend=True)
    await op.step()
    assert (await op.jobs())[0]["state"] == "running"
    assert op.status()["phase"] != "Suspended", "DLI still runs the attempt"
    await op.step()
    assert (await op.jobs())[0]["state"] == "dead"
    assert op.status()["phase"] == "Suspended"


async def test_namespace_deletion_does_not_hang_when_the_credentials_are_gone(
    op: Harness, emulator_config: EmulatorConfig
) -> None:
    keys = {"accessKey": emulator_config.access_key, "secretKey": emulator_config.secret_key}
    op.kube.secrets["dli"] = keys
    op.create(credentialsSecretRef={"name": "dli"})
    await op.step()
    batch_id = op.status()["batchId"]
    del op.kube.secrets["dli"]
    op.kube.terminating.add(NAMESPACE)
    assert await op.finalize() is None
    warnings = [e for e in op.events if e[0] == "Warning"]
    assert any(batch_id in message for _, _, message in warnings), warnings


async def test_an_undocumented_dli_state_ends_the_job_as_failed_with_the_raw_state(
    op: Harness,
) -> None:
    op.create()
    await op.step()
    await op.later(2)
    batch = (await op.jobs())[0]
    killed = {**_session(batch), "state": "killed"}
    page = {"from": 0, "total": 1, "sessions": [killed]}
    await op.fault(operation="list", action="respond", status=200, body=page, times=5)
    await op.fault(operation="show", action="respond", status=200, body=killed, times=5)
    assert await op.step() is None
    assert op.status()["phase"] == "Failed"
    assert "killed" in op.status()["message"]


async def test_a_final_job_leaves_no_per_process_memory(op: Harness) -> None:
    op.create()
    await op.step()
    await op.later(60)
    assert await op.step() is None
    uid = op.kube.objects["etl"]["metadata"]["uid"]
    ledger = op.driver.ledger
    assert uid not in ledger.locks
    assert uid not in ledger.written


async def test_a_job_that_left_the_process_is_forgotten_and_resumes_from_its_status(
    op: Harness,
) -> None:
    op.create(conf={"spark.dli.emulator.runSeconds": "300"})
    await op.step()
    uid = op.kube.objects["etl"]["metadata"]["uid"]
    ledger = op.driver.ledger
    assert uid in ledger.written
    op.driver.forget(uid)  # e.g. the job moved to another shard
    assert uid not in ledger.locks
    assert uid not in ledger.written
    assert uid not in ledger.claims
    await op.later(2)
    await op.step()
    assert len(await op.jobs()) == 1, "forgetting a job never submits it again"


def _session(batch: dict[str, Any]) -> dict[str, Any]:
    """A DLI list/show session for an emulator job (the wire spelling, dli_02_0126)."""
    return {
        "id": batch["id"],
        "name": batch["name"],
        "state": batch["state"],
        "queue": "q1",
        "create_time": batch.get("create_time", 1_700_000_000_000),
        "update_time": batch.get("create_time", 1_700_000_000_000),
        "log": [],
    }


async def test_a_refused_call_then_a_timed_out_one_is_looked_up_not_sent_a_third_time(
    op: Harness,
) -> None:
    op.create()
    op.wire.refuse_posts = 1
    await op.step()  # provably never reached DLI
    op.wire.hold_posts = 1
    await op.step()  # sent again under the same claim: this one may have reached DLI
    await op.wire.deliver_held()
    await op.step()
    jobs = await op.jobs()
    assert len(jobs) == 1, f"one attempt became {len(jobs)} DLI batches"
    assert op.condition("Submitted")["reason"] == "Adopted"


async def test_a_queued_submission_shows_the_queue_in_its_intent_write(
    op: Harness, log: Log
) -> None:
    dli_settings = op.settings.dli.model_copy(update={"requests_per_second": 0.1, "burst": 1})
    op.settings = op.settings.model_copy(update={"dli": dli_settings})
    op.restart()
    op.create("first")
    await op.step("first")  # takes the only slot: the next one is 10 s away
    op.create("second")
    log.clear()
    waiting = asyncio.ensure_future(op.step("second"))
    for _ in range(50):
        await asyncio.sleep(0)
    assert log == [("kube", "patch", *sorted(log[0][2:]))], "one write: intent and notice"
    status = op.status("second")
    assert status["submission"].get("sentAt") is None, "not claimed while it waits"
    assert op.condition("Submitted", "second")["reason"] == "WaitingForRequestSlot"
    waiting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiting
    assert (await op.calls())["create"] == 1


async def test_many_jobs_with_a_wrong_key_never_send_it_again_until_it_changes(
    op: Harness, log: Log, emulator_config: EmulatorConfig
) -> None:
    # DLI's gateway locks a key after 5 failed signatures: 5 jobs retrying must not add up.
    op.kube.secrets["dli"] = {"accessKey": emulator_config.access_key, "secretKey": "wrong"}
    names = [op.create(f"job-{n}", credentialsSecretRef={"name": "dli"}) for n in range(5)]
    for _ in range(2):
        for name in names:
            await op.step(name)
    assert len(dli_calls(log)) == 1, "one rejection, then nobody sends with that key"
    for name in names:
        submitted = op.condition("Submitted", name)
        assert submitted["reason"] == "AuthenticationFailed"
        assert "APIG.0301" in submitted["message"]
    op.kube.secrets["dli"]["secretKey"] = emulator_config.secret_key
    for name in names:
        await op.step(name)
    assert len(await op.jobs()) == 5, "fixed keys are used at once, without waiting"


async def test_clients_limiters_and_credentials_no_job_uses_are_forgotten(
    op: Harness, monkeypatch: pytest.MonkeyPatch, emulator_config: EmulatorConfig
) -> None:
    from dli_operator import runtime as runtime_module

    clock = [1000.0]
    monkeypatch.setattr(runtime_module.time, "monotonic", lambda: clock[0])
    op.kube.secrets["dli"] = {
        "accessKey": emulator_config.access_key,
        "secretKey": emulator_config.secret_key,
    }
    op.create("own", credentialsSecretRef={"name": "dli"})
    op.create("shared")
    runtime = op.driver.runtime
    runtime._swept = clock[0]
    await op.step("own")
    await op.step("shared")
    assert len(runtime._dli) == 2
    clock[0] += runtime_module.IDLE_EVICT_SECONDS / 2
    await op.step("shared")  # still polled: stays
    clock[0] += runtime_module.IDLE_EVICT_SECONDS / 2 + runtime_module.EVICT_EVERY_SECONDS
    await op.step("shared")
    assert [dli.source for dli in runtime._dli.values()] == [runtime_module.DEFAULT_SOURCE]
    assert set(runtime._credentials) == {runtime_module.DEFAULT_SOURCE}
    assert runtime._secrets == {}


async def test_ha_handover_a_replica_with_a_stale_view_never_moves_an_attempt_back(
    op: Harness,
) -> None:
    # Found by the chaos suite (docs/reliability.md): a replica that lost the job wrote its
    # older view of attempt 1 over the status recording attempt 2, which was then posted again.
    conf = {"spark.dli.emulator.outcome": "dead"}
    op.create(conf=conf, autoRecovery=True, maxRetryTimes=2)
    active = op.driver
    await op.step()
    await op.later(60)
    stale = op.kube.body("etl")  # what the other replica's watch still shows
    await op.step()  # attempt 1 is dead: a retry is scheduled
    await op.step()  # attempt 2 is posted
    assert [a["attempt"] for a in op.status()["attempts"]] == [1, 2]
    other = op.restart()
    await other.step(stale, op.announce)  # its view: attempt 1, just seen dead
    op.driver = active
    await op.later(60)
    for _ in range(3):
        await op.step()
    names = sorted(job["name"].rsplit("-", 1)[1] for job in await op.jobs())
    assert names == sorted(set(names)), f"an attempt was posted twice: {names}"


async def test_kopfs_own_metadata_patches_do_not_fail_a_status_write(op: Harness) -> None:
    op.create(conf={"spark.dli.emulator.runSeconds": "300"})
    await op.step()
    await op.later(2)
    await op.step()
    op.edit(suspend=True)
    body = op.kube.body("etl")
    op.kube.touch("etl")  # kopf stores its annotations while the step runs
    await op.driver.step(body, op.announce)
    assert op.status()["phase"] == "Suspended"
    assert (await op.calls())["cancel"] == 1, "one cancel, stored at once"
