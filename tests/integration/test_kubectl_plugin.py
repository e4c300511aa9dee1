"""``kubectl dli`` against the in-process emulator and a small fake of the Kubernetes API.

DLI requests go through ``httpx.ASGITransport`` to the emulator app, whose fake clock moves
only when the plugin sleeps between polls; the fake cluster mirrors the emulator's state into
the job's status the way the operator would, so ``logs -f`` sees a job run and finish.
"""

from __future__ import annotations

import asyncio
import copy
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import pytest
from click.testing import CliRunner, Result
from starlette.applications import Starlette

from dli_operator.dli.auth import AkSkAuth, Credentials
from dli_operator.dli.client import DliClient
from dli_operator.emulator.clock import FakeClock
from dli_operator.emulator.config import EmulatorConfig
from dli_operator.kubeapi import CREDENTIALS_TYPE, KubeApi, KubeApiError, Secret
from dli_operator.kubectl import access, config
from dli_operator.kubectl.access import Session
from dli_operator.kubectl.commands import RERUN_OF, main
from dli_operator.resources.batchjob import DliBatchJobSpec
from dli_operator.translate import to_request

NS = "team"
ENDPOINT = "http://dli.emulator"
SPEC = {"file": "obs://bucket/app.py", "queue": "q1", "name": "etl"}
UID = "6f1c2a9e-4b7d-4c1e-9a55-0d2f7e1b3c4d"
PHASES = {"starting": "Starting", "running": "Running", "success": "Succeeded", "dead": "Failed"}


class FakeCluster(KubeApi):
    """DliBatchJobs, Secrets and Events of one namespace; Secret reads may be forbidden."""

    def __init__(self) -> None:
        self.jobs: dict[str, dict[str, Any]] = {}
        self.secrets: dict[str, dict[str, str]] = {}
        self.secret_types: dict[str, str] = {}
        """Secret types other than dli.dev/credentials."""
        self.forbidden_secrets = False
        self.events: list[dict[str, Any]] = []

    def add(self, name: str, spec: dict[str, Any], **status: Any) -> dict[str, Any]:
        self.jobs[name] = {
            "apiVersion": "dli.dev/v1alpha1",
            "kind": "DliBatchJob",
            "metadata": {
                "name": name,
                "namespace": NS,
                "uid": UID,
                "labels": {"app": "etl", "app.kubernetes.io/instance": "argo-app"},
                "annotations": {
                    "dli.dev/last-handled-configuration": "{}",
                    "argocd.argoproj.io/tracking-id": "argo-app:dli.dev/DliBatchJob:team/etl",
                    "team": "a",
                },
            },
            "spec": copy.deepcopy(spec),
            "status": status,
        }
        return self.jobs[name]

    async def get_object(self, plural: str, namespace: str, name: str) -> dict[str, Any] | None:
        return copy.deepcopy(self.jobs.get(name))

    async def create_job(self, namespace: str, body: dict[str, Any]) -> dict[str, Any] | None:
        meta = body["metadata"]
        name = meta.get("name") or meta["generateName"] + "x7k2p"
        stored = copy.deepcopy(body) | {"metadata": meta | {"name": name, "namespace": namespace}}
        self.jobs[name] = stored
        return stored

    async def patch_job(self, namespace: str, name: str, patch: dict[str, Any]) -> dict[str, Any]:
        self.jobs[name]["spec"].update(patch["spec"])
        return self.jobs[name]

    async def list_events(self, namespace: str, uid: str) -> list[dict[str, Any]]:
        return [e for e in self.events if e["involvedObject"]["uid"] == uid]

    async def read_secret(self, namespace: str, name: str) -> Secret | None:
        if self.forbidden_secrets:
            raise KubeApiError(f"GET secret {name}: 403 forbidden", 403)
        values = self.secrets.get(name)
        if values is None:
            return None
        data = {key: value.encode() for key, value in values.items()}
        return Secret(self.secret_types.get(name, CREDENTIALS_TYPE), data)

    async def aclose(self) -> None:
        pass


@pytest.fixture
def cluster() -> FakeCluster:
    return FakeCluster()


@pytest.fixture
def env(emulator_config: EmulatorConfig) -> dict[str, str]:
    return {
        access.ENV_ACCESS_KEY: emulator_config.access_key,
        access.ENV_SECRET_KEY: emulator_config.secret_key,
        access.ENV_PROJECT_ID: emulator_config.project_id,
        access.ENV_ENDPOINT: ENDPOINT,
        access.ENV_ALLOW_INSECURE: "true",
    }


@pytest.fixture
def session(
    cluster: FakeCluster,
    env: dict[str, str],
    emulator_app: Starlette,
    emulator_config: EmulatorConfig,
    fake_clock: FakeClock,
) -> Session:
    transport = httpx.ASGITransport(app=emulator_app)

    async def operator_poll(seconds: float) -> None:
        """Time passes; the 'operator' mirrors DLI's state into every job's status."""
        fake_clock.advance(seconds)
        async with dli_client(emulator_config, transport) as client:
            for job in cluster.jobs.values():
                if batch := job["status"].get("batchId"):
                    state = (await client.get_batch(batch)).state
                    job["status"]["phase"] = PHASES[str(state)]

    return Session(cluster, env, NS, transport=transport, sleep=operator_poll)


def dli_client(config: EmulatorConfig, transport: httpx.AsyncBaseTransport) -> DliClient:
    creds = Credentials(config.access_key, config.secret_key)
    return DliClient(
        project_id=config.project_id,
        endpoint=ENDPOINT,
        auth=AkSkAuth(creds),
        allow_insecure=True,
        transport=transport,
    )


def submit(session: Session, config: EmulatorConfig) -> str:
    """Create a batch in the emulator, as the operator would have; return its id."""

    async def post() -> str:
        assert session.transport is not None
        async with dli_client(config, session.transport) as client:
            request = to_request(DliBatchJobSpec.model_validate(SPEC), job_name="etl-6f1c2a9e-1")
            return (await client.create_batch(request)).id

    return asyncio.run(post())


def running_job(cluster: FakeCluster, batch: str, **spec: Any) -> None:
    attempt = {"attempt": 1, "batchId": batch, "submitTime": "2024-05-01T12:00:00Z"}
    cluster.add("etl", SPEC | spec, phase="Starting", batchId=batch, attempts=[attempt])


def kubectl_dli(session: Session, *args: str) -> Result:
    return CliRunner().invoke(main, list(args), obj=session)


def test_logs_follow_prints_every_line_once_until_the_job_is_final(
    session: Session, cluster: FakeCluster, emulator_config: EmulatorConfig
) -> None:
    running_job(cluster, submit(session, emulator_config))
    result = kubectl_dli(session, "logs", "etl", "-f", "--interval", "1")
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert any("Running Spark version" in line for line in lines)
    assert lines[-3:] == [lines[-3], "stdout: ", "stderr: "]
    assert "Successfully stopped SparkContext" in lines[-3]
    assert lines == kubectl_dli(session, "logs", "etl").output.splitlines()  # each line once
    assert cluster.jobs["etl"]["status"]["phase"] == "Succeeded"


def test_logs_follow_moves_on_to_the_next_attempt(
    session: Session, cluster: FakeCluster, emulator_config: EmulatorConfig
) -> None:
    first, second = submit(session, emulator_config), submit(session, emulator_config)
    running_job(cluster, first)
    mirror = session.sleep

    async def retry_once(seconds: float) -> None:
        """As the operator would: the first attempt's end is followed by a second attempt."""
        await mirror(seconds)
        status = cluster.jobs["etl"]["status"]
        if status["batchId"] == first and status["phase"] in ("Succeeded", "Failed"):
            status["attempts"][0]["finishTime"] = "2024-05-01T12:01:00Z"
            status["attempts"].append({"attempt": 2, "batchId": second})
            status.update(phase="Starting", batchId=second)

    session.sleep = retry_once
    result = kubectl_dli(session, "logs", "etl", "-f", "--interval", "1")
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    marker = lines.index(f"--- attempt 2: DLI batch {second} ---")
    assert any(first in line for line in lines[:marker])
    assert any(second in line for line in lines[marker:])
    assert "Successfully stopped SparkContext" in lines[-3]


def test_logs_tail_prints_only_the_last_lines(
    session: Session, cluster: FakeCluster, emulator_config: EmulatorConfig, fake_clock: FakeClock
) -> None:
    running_job(cluster, submit(session, emulator_config))
    fake_clock.advance(60)
    full = kubectl_dli(session, "logs", "etl").output.splitlines()
    tail = kubectl_dli(session, "logs", "etl", "--tail", "2")
    assert len(full) > 2
    assert tail.output.splitlines() == full[-2:]


def test_clear_errors_for_an_unknown_job_no_batch_and_an_unknown_attempt(
    session: Session, cluster: FakeCluster
) -> None:
    missing = kubectl_dli(session, "logs", "nope")
    assert missing.exit_code == 1
    assert 'dlibatchjob "nope" not found in namespace "team"' in missing.output
    cluster.add("etl", SPEC, phase="Pending")
    early = kubectl_dli(session, "logs", "etl")
    assert "has no DLI batch (phase Pending); try -f" in early.output
    cluster.add("rejected", SPEC, phase="Failed", reason="SubmitRejected")
    ended = kubectl_dli(session, "logs", "rejected", "-f")
    assert ended.exit_code == 1
    assert "has no DLI batch (phase Failed: SubmitRejected)" in ended.output
    wrong = kubectl_dli(session, "logs", "etl", "--attempt", "3")
    assert "has no attempt 3 (attempts: none yet)" in wrong.output
    assert "Traceback" not in missing.output + early.output + wrong.output


def test_dli_errors_show_their_code(session: Session, cluster: FakeCluster) -> None:
    running_job(cluster, "0a324461-d9d9-45da-a52a-3b3c7a3d809e")  # unknown to DLI
    result = kubectl_dli(session, "logs", "etl")
    assert result.exit_code == 1
    assert "DLI refused: DLI." in result.output


def test_credentials_come_from_the_secret_if_readable_else_from_the_environment(
    session: Session, cluster: FakeCluster, emulator_config: EmulatorConfig, env: dict[str, str]
) -> None:
    ref = {"credentialsSecretRef": {"name": "keys"}}
    running_job(cluster, submit(session, emulator_config), **ref)
    cluster.secrets["keys"] = {"accessKey": emulator_config.access_key, "secretKey": "wrong"}
    from_secret = kubectl_dli(session, "logs", "etl")
    assert "DLI refused" in from_secret.output  # the Secret's (wrong) key was used, not env
    cluster.forbidden_secrets = True
    assert kubectl_dli(session, "logs", "etl").exit_code == 0  # the user's own keys
    del env[access.ENV_SECRET_KEY]
    none = kubectl_dli(session, "logs", "etl")
    assert "no DLI credentials: you may not read Secret team/keys" in none.output
    assert "HUAWEICLOUD_SDK_SK" in none.output


def test_an_ordinary_secret_is_never_read_for_credentials(
    session: Session, cluster: FakeCluster, emulator_config: EmulatorConfig
) -> None:
    ref = {"credentialsSecretRef": {"name": "keys"}}
    running_job(cluster, submit(session, emulator_config), **ref)
    cluster.secrets["keys"] = {"accessKey": emulator_config.access_key, "secretKey": "wrong"}
    cluster.secret_types["keys"] = "Opaque"
    assert kubectl_dli(session, "logs", "etl").exit_code == 0  # the user's own keys, not its


def test_a_plain_http_endpoint_needs_an_opt_in(
    session: Session, cluster: FakeCluster, env: dict[str, str]
) -> None:
    running_job(cluster, "0a324461-d9d9-45da-a52a-3b3c7a3d809e")
    del env[access.ENV_ALLOW_INSECURE]
    result = kubectl_dli(session, "logs", "etl")
    assert "plain http" in result.output
    assert access.ENV_ALLOW_INSECURE in result.output


def test_your_own_keys_never_go_to_an_endpoint_the_job_chose(
    session: Session, cluster: FakeCluster, emulator_config: EmulatorConfig, env: dict[str, str]
) -> None:
    batch = submit(session, emulator_config)
    running_job(cluster, batch, endpoint="https://dli.attacker.example")
    refused = kubectl_dli(session, "logs", "etl")
    assert refused.exit_code == 1
    assert "sends DLI calls to https://dli.attacker.example" in refused.output
    assert f"set {access.ENV_ENDPOINT}=https://dli.attacker.example if you trust it" in (
        refused.output
    )
    running_job(cluster, batch, endpoint=ENDPOINT)  # the endpoint the user named: allowed
    assert kubectl_dli(session, "logs", "etl").exit_code == 0


def saved_settings(config_: EmulatorConfig, endpoint: str = ENDPOINT) -> config.ContextSettings:
    """What ``make dev`` saves for the demo's context (hack/dev.sh): nothing is exported."""
    return config.ContextSettings(
        server="https://127.0.0.1:6443",
        endpoint=endpoint,
        allow_insecure_endpoint=True,
        credentials=Credentials(config_.access_key, config_.secret_key, "your-security-token"),
    )


def test_logs_work_with_nothing_exported_once_settings_are_saved_for_the_context(
    session: Session, cluster: FakeCluster, emulator_config: EmulatorConfig, env: dict[str, str]
) -> None:
    """The demo: the job's status.target says where the batch lives, the saved settings whose
    keys may go there; the project comes from the target too (the job names none)."""
    batch = submit(session, emulator_config)
    running_job(cluster, batch)
    target = {"endpoint": ENDPOINT, "projectId": emulator_config.project_id}
    cluster.jobs["etl"]["status"]["target"] = target
    env.clear()
    assert "no DLI credentials" in kubectl_dli(session, "logs", "etl").output
    session.saved = saved_settings(emulator_config)
    result = kubectl_dli(session, "logs", "etl", "-f", "--interval", "1")
    assert result.exit_code == 0, result.output
    assert "Successfully stopped SparkContext" in result.output


@contextmanager
def listener() -> Iterator[tuple[str, list[bytes]]]:
    """A TCP listener on loopback standing for an attacker's endpoint: records what arrives,
    answers 403 (not retried)."""
    server = socket.create_server(("127.0.0.1", 0))
    server.settimeout(0.2)
    received: list[bytes] = []
    stop = threading.Event()

    def accept() -> None:
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except TimeoutError:
                continue
            with conn:
                conn.settimeout(1.0)
                try:
                    received.append(conn.recv(65536))
                    conn.sendall(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n")
                except OSError:
                    received.append(b"")

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.getsockname()[1]}", received
    finally:
        stop.set()
        thread.join()
        server.close()


@pytest.mark.parametrize("keys_from", ["saved settings", "environment"])
def test_a_forged_status_target_never_gets_your_keys(
    cluster: FakeCluster, emulator_config: EmulatorConfig, env: dict[str, str], keys_from: str
) -> None:
    """Anyone who may write dlibatchjobs/status (not only the operator: see docs/security.md)
    can point status.target anywhere. With your keys, that endpoint is refused before any
    connection is made, and neither the message nor anything else shows a key."""
    with listener() as (attacker, received):
        if keys_from == "saved settings":
            env.clear()
            session = Session(cluster, {}, NS, saved=saved_settings(emulator_config))
        else:
            session = Session(cluster, env, NS)
        batch = "0a324461-d9d9-45da-a52a-3b3c7a3d809e"
        running_job(cluster, batch)
        forged = {"endpoint": attacker, "projectId": emulator_config.project_id}
        cluster.jobs["etl"]["status"]["target"] = forged
        for args in (["logs", "etl"], ["logs", "etl", "-f"], ["logs", "etl", "--tail", "1"]):
            result = kubectl_dli(session, *args)
            assert result.exit_code == 1
            assert f"the job sends DLI calls to {attacker}" in result.output
            for secret in (emulator_config.secret_key, "your-security-token"):
                assert secret not in result.output
        # The spec agreeing with the forged status changes nothing.
        running_job(cluster, batch, endpoint=attacker)
        cluster.jobs["etl"]["status"]["target"] = forged
        assert kubectl_dli(session, "logs", "etl").exit_code == 1
    assert received == [], "a connection reached the job-chosen endpoint"


def test_a_forged_status_target_is_reached_only_when_you_name_it_yourself(
    cluster: FakeCluster, emulator_config: EmulatorConfig
) -> None:
    """The listener does get the request once the user names that endpoint (a flag): so the
    test above would see a connection if the refusal were missing."""
    with listener() as (attacker, received):
        session = Session(cluster, {}, NS, saved=saved_settings(emulator_config))
        running_job(cluster, "0a324461-d9d9-45da-a52a-3b3c7a3d809e")
        forged = {"endpoint": attacker, "projectId": emulator_config.project_id}
        cluster.jobs["etl"]["status"]["target"] = forged
        result = kubectl_dli(session, "logs", "etl", "--endpoint", attacker)
        assert result.exit_code == 1  # the listener refuses
    assert received
    assert received[0].startswith(b"GET /v2.0/")


def test_describe_shows_status_attempts_conditions_and_events(
    session: Session, cluster: FakeCluster
) -> None:
    running_job(cluster, "0a324461-d9d9-45da-a52a-3b3c7a3d809e")
    cluster.jobs["etl"]["status"]["conditions"] = [
        {
            "type": "Submitted",
            "status": "True",
            "reason": "Submitted",
            "message": "held",
            "lastTransitionTime": "2024-05-01T12:00:01Z",
        }
    ]
    cluster.events.append(
        {
            "involvedObject": {"uid": UID},
            "type": "Normal",
            "reason": "Starting",
            "message": "phase Starting",
            "lastTimestamp": "2024-05-01T12:00:02Z",
            "count": 2,
        }
    )
    out = kubectl_dli(session, "describe", "etl").output
    assert "Phase:        Starting" in out
    assert "0a324461-d9d9-45da-a52a-3b3c7a3d809e" in out
    assert "Submitted  True" in out
    assert "phase Starting" in out
    assert "(x2)" in out


def test_rerun_copies_the_spec_and_user_metadata_but_not_suspend_or_gitops_ownership(
    session: Session, cluster: FakeCluster
) -> None:
    cluster.add("etl", SPEC | {"suspend": True}, phase="Suspended")
    result = kubectl_dli(session, "rerun", "etl")
    assert result.output.strip() == "etl-x7k2p"
    new = cluster.jobs["etl-x7k2p"]
    assert new["spec"] == SPEC
    assert new["metadata"]["labels"] == {"app": "etl"}
    assert new["metadata"]["annotations"] == {"team": "a", RERUN_OF: "etl"}
    named = kubectl_dli(session, "rerun", "etl", "--name", "etl-again")
    assert named.output.strip() == "etl-again"


def test_suspend_and_resume_set_the_spec_field_and_refuse_a_final_job(
    session: Session, cluster: FakeCluster
) -> None:
    cluster.add("etl", SPEC, phase="Running")
    assert "suspended" in kubectl_dli(session, "suspend", "etl").output
    assert cluster.jobs["etl"]["spec"]["suspend"] is True
    assert "resumed" in kubectl_dli(session, "resume", "etl").output
    assert cluster.jobs["etl"]["spec"]["suspend"] is False
    cluster.jobs["etl"]["status"]["phase"] = "Succeeded"
    refused = kubectl_dli(session, "suspend", "etl")
    assert refused.exit_code == 1
    assert "already Succeeded; use kubectl dli rerun" in refused.output
