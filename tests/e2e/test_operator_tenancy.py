"""Tenant isolation and workload identity on the real control plane (issue 11).

- A job that points its endpoint at a host the admin did not trust gets a ``PolicyDenied``
  condition and Event, and the host gets nothing: not a request, not even a connection.
- The operator runs without any static key: its ServiceAccount token, issued by the API server
  through the TokenRequest API, is exchanged at the emulator's IAM for temporary keys that last
  seconds, so they are renewed several times while one job runs, and the job never notices.
"""

from __future__ import annotations

import json
import socket
import threading
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client

SECRET = "dli-creds"
IDP = "e2e-cluster"
AUDIENCE = "dli.dev"
KEY_SECONDS = 6  # temporary keys the emulator's IAM grants: renewed every ~3 s
RUN_SECONDS = 14


class Listener:
    """A TCP port that counts every connection made to it (and answers none)."""

    def __init__(self) -> None:
        self.socket = socket.create_server(("127.0.0.1", 0))
        self.socket.settimeout(0.2)
        self.port = self.socket.getsockname()[1]
        self.connections = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.socket.accept()
            except TimeoutError:
                continue
            self.connections += 1
            conn.close()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self.socket.close()


@pytest.fixture
def listener() -> Iterator[Listener]:
    spy = Listener()
    yield spy
    spy.close()


def put_secret(kube: Any, namespace: str) -> None:
    secret = client.V1Secret(
        metadata=client.V1ObjectMeta(name=SECRET),
        type="dli.dev/credentials",
        string_data={"accessKey": "EMULATORAK", "secretKey": "EMULATORSK"},
    )
    client.CoreV1Api(kube.api).create_namespaced_secret(namespace, secret)


def denied(jobs: Any, name: str) -> dict[str, Any]:
    def warned(events: list[dict[str, Any]]) -> bool:
        return any(e["reason"] == "PolicyDenied" for e in events)

    events = jobs.wait_events(name, warned, timeout=30)
    assert warned(events), f"no PolicyDenied Event for {name}: {events}"
    conditions = {c["type"]: c for c in jobs.status(name).get("conditions", [])}
    # Refused until an admin or the author acts: Stalled, so Flux and Argo CD stop waiting.
    assert (conditions["Stalled"]["status"], conditions["Stalled"]["reason"]) == (
        "True",
        "PolicyDenied",
    )
    assert conditions["Reconciling"]["status"] == "False"
    return dict(conditions["Submitted"])


def test_a_job_pointing_at_a_local_listener_gets_nothing_sent_to_it(
    jobs: Any, kube: Any, emulator: Any, operator: Any, listener: Listener
) -> None:
    url = f"http://127.0.0.1:{listener.port}"
    put_secret(kube, jobs.namespace)
    jobs.apply_many(
        {
            "borrowing": {"endpoint": url},
            "own-keys": {"endpoint": url, "credentialsSecretRef": {"name": SECRET}},
        }
    )
    for name in ("borrowing", "own-keys"):
        submitted = denied(jobs, name)
        assert submitted["reason"] == "PolicyDenied"
        assert "DLI_OPERATOR_POLICY__ALLOWED_ENDPOINTS" in submitted["message"]
    assert listener.connections == 0
    assert emulator.calls() == {}
    assert operator.process.poll() is None


def emulator_iam(emulator: Any, spec: dict[str, Any]) -> dict[str, Any]:
    request = urllib.request.Request(
        emulator.url + "/_emulator/iam",
        data=json.dumps(spec).encode(),
        method="POST",
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return dict(json.loads(response.read()))


def service_account_token(kube: Any) -> str:
    """A projected-style token for the operator's ServiceAccount, from the TokenRequest API."""
    out = kube.kubectl(
        "create", "token", "dli-operator", "-n", "dli-operator-system",
        f"--audience={AUDIENCE}", "--duration=10m",
    )  # fmt: skip
    return str(out.stdout.strip())


def test_workload_identity_keys_are_renewed_in_the_middle_of_a_running_job(
    jobs: Any, kube: Any, emulator: Any, start_operator: Any, tmp_path: Path
) -> None:
    jwks = json.loads(kube.kubectl("get", "--raw", "/openid/v1/jwks").stdout)
    emulator_iam(
        emulator,
        {"idpId": IDP, "jwks": jwks, "audiences": [AUDIENCE], "credentialSeconds": KEY_SECONDS},
    )
    token_file = tmp_path / "token"
    token_file.write_text(service_account_token(kube))
    operator = start_operator(
        env={
            "DLI_OPERATOR_DLI__ACCESS_KEY": "",
            "DLI_OPERATOR_DLI__SECRET_KEY": "",
            "DLI_OPERATOR_IDENTITY__SOURCE": "oidc",
            "DLI_OPERATOR_IDENTITY__IDP_ID": IDP,
            "DLI_OPERATOR_IDENTITY__IAM_ENDPOINT": emulator.url,
            "DLI_OPERATOR_IDENTITY__TOKEN_FILE": str(token_file),
        }
    )
    jobs.apply("federated", {"conf": {"spark.dli.emulator.runSeconds": str(RUN_SECONDS)}})
    jobs.wait_phase("federated", "Running", timeout=30)
    # The kubelet rotates projected tokens; the operator reads the file again on each exchange.
    token_file.write_text(service_account_token(kube))
    status = jobs.wait_phase("federated", "Succeeded", "Failed", timeout=60)
    assert status["phase"] == "Succeeded"
    issued = emulator_iam(emulator, {})["issued"]
    assert issued["securitytoken"] >= 3, issued  # renewed at least twice during the run
    assert issued["id_token"] == issued["securitytoken"]
    refused = {op: n for op, counts in emulator.outcomes().items() for s, n in counts.items()
               if s == "401"}  # fmt: skip
    assert refused == {}, f"DLI refused expired keys: {emulator.outcomes()}"
    reasons = {e["reason"] for e in jobs.events("federated")}
    assert "AuthenticationFailed" not in reasons
    assert "CredentialsUnavailable" not in reasons
    assert operator.process.poll() is None
    log = operator.log.read_text()
    assert token_file.read_text() not in log
