"""End-to-end fixtures: the DLI emulator and the operator, each a real process.

Each test gets its own emulator (fresh counters) and runs its operators against its own
namespace, so tests never see each other's jobs or DLI calls.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

from dli_operator import controlplane

PROJECT_ID = "0123456789abcdef0123456789abcdef"
DEPLOY_BASE = Path(__file__).resolve().parents[2] / "deploy" / "base"
SYSTEM_NAMESPACE = "dli-operator-system"
ACCESS_KEY, SECRET_KEY = "EMULATORAK", "EMULATORSK"
CLI = [str(Path(sys.executable).parent / "dli-operator")]
# Fast loops so end-to-end tests take seconds: poll every second, retry after a second.
FAST = {
    "DLI_OPERATOR_RECONCILE__POLL_INTERVAL_SECONDS": "1",
    "DLI_OPERATOR_RECONCILE__RETRY_BACKOFF_SECONDS": "1",
    "DLI_OPERATOR_RECONCILE__ERROR_BACKOFF_SECONDS": "1",
    "DLI_OPERATOR_RECONCILE__SECRET_CACHE_SECONDS": "0",
    "DLI_OPERATOR_RECONCILE__BLOCKED_RETRY_SECONDS": "2",
    "DLI_OPERATOR_DLI__READ_TIMEOUT_SECONDS": "3",
    # A create whose outcome is unknown is sent again after 10 + 10 + 2 = 22 s (claim, request
    # deadline, late-create margin), not minutes.
    "DLI_OPERATOR_DLI__REQUEST_DEADLINE_SECONDS": "10",
    "DLI_OPERATOR_RECONCILE__LATE_CREATE_MARGIN_SECONDS": "2",
    "DLI_OPERATOR_DLI__REQUESTS_PER_SECOND": "200",
    "DLI_OPERATOR_DLI__BURST": "200",
    "DLI_OPERATOR_METRICS__PORT": "0",
}


@dataclass
class Emulator:
    """A running ``dli-operator emulator`` and its ``/_emulator/`` control API."""

    port: int
    process: subprocess.Popen[bytes]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _call(self, method: str, path: str, body: Any = None) -> Any:
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.url + path, data=data, method=method)
        req.add_header("Content-Type", "application/json")
        with urllib.request.urlopen(req, timeout=10) as response:
            return json.loads(response.read())

    def calls(self) -> dict[str, int]:
        return dict(self._call("GET", "/_emulator/calls")["calls"])

    def outcomes(self) -> dict[str, dict[str, int]]:
        """Answers per operation: ``{"list": {"200": 9, "503": 2}, ...}``."""
        return dict(self._call("GET", "/_emulator/calls")["outcomes"])

    def jobs(self) -> list[dict[str, Any]]:
        return list(self._call("GET", "/_emulator/jobs")["jobs"])

    def created(self, name: str) -> list[dict[str, Any]]:
        """DLI jobs submitted for one DliBatchJob (named ``<name>-<uid8>-<attempt>``)."""
        return [j for j in self.jobs() if (j.get("name") or "").rsplit("-", 2)[0] == name]

    def fault(self, **spec: Any) -> None:
        self._call("POST", "/_emulator/faults", spec)

    def clear_faults(self) -> None:
        self._call("DELETE", "/_emulator/faults")


@dataclass
class Operator:
    """One ``dli-operator run`` process for one namespace."""

    namespace: str
    env: dict[str, str]
    log: Path
    extra: list[str] = field(default_factory=list)
    process: subprocess.Popen[bytes] | None = None
    stopped: bool = False
    """Asked to stop (SIGTERM): the exit that follows is expected, whatever its code."""

    def start(self) -> Operator:
        args = [*CLI, "run", "--namespace", self.namespace, "--liveness", "", *self.extra]
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(
                args, env=self.env, stdout=out, stderr=subprocess.STDOUT
            )
        return self

    def kill(self, sig: int = signal.SIGKILL) -> None:
        if self.process and self.process.poll() is None:
            self.process.send_signal(sig)
            self.process.wait(timeout=30)

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.stopped = True
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


@pytest.fixture
def emulator_args() -> list[str]:
    """The emulator's flags; a test module overrides this fixture to change back end."""
    return ["--start-seconds", "1", "--run-seconds", "2"]


@pytest.fixture
def emulator(tmp_path: Path, emulator_args: list[str]) -> Iterator[Emulator]:
    port = controlplane.free_port()
    log = (tmp_path / "emulator.log").open("ab")
    process = subprocess.Popen(
        [*CLI, "emulator", "--port", str(port), *emulator_args],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    log.close()
    try:
        controlplane.wait_for_port(port)
        yield Emulator(port, process)
    finally:
        process.terminate()
        process.wait(timeout=10)


@pytest.fixture(scope="session")
def operator_kubeconfig(kube) -> Path:
    """A kubeconfig holding a token of the operator's ServiceAccount under deploy/base's RBAC.

    Every end-to-end operator runs with it, not as admin, so each test also proves the RBAC
    in deploy/ is enough (least privilege, issue 7).
    """
    for name in ("namespace.yaml", "serviceaccount.yaml", "rbac.yaml"):
        kube.kubectl("apply", "--server-side", "-f", str(DEPLOY_BASE / name))
    token = kube.kubectl(
        "create", "token", "dli-operator", "-n", SYSTEM_NAMESPACE, "--duration=6h"
    ).stdout.strip()
    return kube.with_token(token, "dli-operator").kubeconfig


@pytest.fixture
def operator_env(
    kube, namespace: str, emulator: Emulator, operator_kubeconfig: Path
) -> dict[str, str]:
    """The environment of an operator that talks to this test's emulator."""
    # Jobs in this namespace may use credentialsSecretRef: grant Secret reads here only.
    kube.kubectl(
        "create",
        "rolebinding",
        "dli-operator-secret-reader",
        "-n",
        namespace,
        "--clusterrole=dli-operator-secret-reader",
        f"--serviceaccount={SYSTEM_NAMESPACE}:dli-operator",
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("DLI_OPERATOR_")}
    env.update(FAST)
    env.update(
        KUBECONFIG=str(operator_kubeconfig),
        DLI_OPERATOR_DLI__ENDPOINT=emulator.url,
        DLI_OPERATOR_DLI__ALLOW_INSECURE_ENDPOINT="true",
        DLI_OPERATOR_DLI__PROJECT_ID=PROJECT_ID,
        DLI_OPERATOR_DLI__ACCESS_KEY=ACCESS_KEY,
        DLI_OPERATOR_DLI__SECRET_KEY=SECRET_KEY,
        # The test's namespace may use the default credentials (docs/security.md).
        DLI_OPERATOR_POLICY__DEFAULT_CREDENTIALS_NAMESPACES=namespace,
    )
    return env


@pytest.fixture
def start_operator(
    namespace: str, operator_env: dict[str, str], tmp_path: Path
) -> Iterator[Callable[..., Operator]]:
    """Start operators for the test's namespace (all stopped at the end)."""
    started: list[Operator] = []

    def start(*extra: str, env: dict[str, str] | None = None) -> Operator:
        log = tmp_path / f"operator-{len(started)}.log"
        op = Operator(namespace, {**operator_env, **(env or {})}, log, list(extra))
        started.append(op.start())
        return op

    yield start
    for op in started:
        op.stop()


@pytest.fixture
def operator(start_operator: Callable[..., Operator]) -> Operator:
    """One operator for the test's namespace (unsharded: it owns every job)."""
    return start_operator()


class Jobs:
    """DliBatchJobs of one namespace, through kubectl on the real API server."""

    def __init__(self, kube, namespace: str) -> None:
        self.kube, self.namespace = kube, namespace

    def manifest(self, name: str, spec: dict[str, Any]) -> dict[str, Any]:
        """A DliBatchJob on the emulator's default queue, with ``spec`` on top."""
        return {
            "apiVersion": "dli.dev/v1alpha1",
            "kind": "DliBatchJob",
            "metadata": {"name": name, "namespace": self.namespace},
            "spec": {"queue": "default", "file": "obs://bucket/app.py", **spec},
        }

    def apply(self, name: str, spec: dict[str, Any]) -> None:
        self.apply_many({name: spec})

    def apply_many(self, specs: dict[str, dict[str, Any]]) -> None:
        """One kubectl apply for many DliBatchJobs."""
        docs = [self.manifest(name, spec) for name, spec in specs.items()]
        self.kube.kubectl("apply", "-f", "-", input=yaml.safe_dump_all(docs))

    def phases(self) -> dict[str, str | None]:
        """Every DliBatchJob of the namespace and its phase."""
        out = self.kube.kubectl("get", "dlibatchjobs", "-n", self.namespace, "-o", "json")
        items = json.loads(out.stdout)["items"]
        return {o["metadata"]["name"]: (o.get("status") or {}).get("phase") for o in items}

    def get(self, name: str) -> dict[str, Any]:
        out = self.kube.kubectl("get", "dlibatchjob", name, "-n", self.namespace, "-o", "json")
        return dict(json.loads(out.stdout))

    def exists(self, name: str) -> bool:
        out = self.kube.kubectl("get", "dlibatchjob", name, "-n", self.namespace, check=False)
        return out.returncode == 0

    def status(self, name: str) -> dict[str, Any]:
        return dict(self.get(name).get("status") or {})

    def wait_phase(self, name: str, *phases: str, timeout: float = 60.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        status: dict[str, Any] = {}
        while time.monotonic() < deadline:
            obj = self.get(name)
            status = dict(obj.get("status") or {})
            if status.get("phase") in phases:
                _capture(obj)
                return status
            time.sleep(0.3)
        raise AssertionError(f"{name} never reached {phases}; last status: {status}")

    def events(self, name: str) -> list[dict[str, Any]]:
        out = self.kube.kubectl(
            "get",
            "events",
            "-n",
            self.namespace,
            f"--field-selector=involvedObject.name={name}",
            "-o",
            "json",
        )
        return list(json.loads(out.stdout)["items"])

    def wait_events(
        self, name: str, check: Callable[[list[dict[str, Any]]], bool], timeout: float = 20.0
    ) -> list[dict[str, Any]]:
        """Events are posted asynchronously: wait until ``check`` holds for them."""
        deadline = time.monotonic() + timeout
        while True:
            events = self.events(name)
            if check(events) or time.monotonic() > deadline:
                return events
            time.sleep(0.3)

    def patch(self, name: str, spec: dict[str, Any]) -> None:
        body = json.dumps({"spec": spec})
        self.kube.kubectl(
            "patch", "dlibatchjob", name, "-n", self.namespace, "--type=merge", "-p", body
        )

    def delete(self, name: str, wait: bool = True) -> None:
        self.kube.kubectl(
            "delete",
            "dlibatchjob",
            name,
            "-n",
            self.namespace,
            f"--wait={str(wait).lower()}",
            "--timeout=60s",
        )


@pytest.fixture
def jobs(kube, namespace: str) -> Jobs:
    return Jobs(kube, namespace)


@dataclass
class Audit:
    """What DLI holds for each DliBatchJob of the namespace, checked against its status."""

    jobs: Jobs
    emulator: Emulator

    def one_batch_per_attempt(self) -> dict[str, dict[str, Any]]:
        """Assert every job has exactly one DLI batch per recorded attempt; return the statuses.

        DLI batches are named ``<name>-<uid8>-<attempt>``: a duplicated attempt number, a batch
        no attempt records, or an attempt without its batch all fail the check.
        """
        out = self.jobs.kube.kubectl("get", "dlibatchjobs", "-n", self.jobs.namespace, "-o", "json")
        items = json.loads(out.stdout)["items"]
        owners = {(o["metadata"]["name"], o["metadata"]["uid"].replace("-", "")[:8]) for o in items}
        batches: dict[tuple[str, str], list[tuple[int, str]]] = {}
        for batch in self.emulator.jobs():
            name, uid8, attempt = batch["name"].rsplit("-", 2)
            assert (name, uid8) in owners, f"DLI batch {batch['name']} belongs to no DliBatchJob"
            batches.setdefault((name, uid8), []).append((int(attempt), batch["id"]))
        statuses: dict[str, dict[str, Any]] = {}
        for item in items:
            name, uid8 = item["metadata"]["name"], item["metadata"]["uid"].replace("-", "")[:8]
            status = item.get("status") or {}
            recorded = sorted((a["attempt"], a["batchId"]) for a in status.get("attempts", []))
            held = sorted(batches.get((name, uid8), []))
            numbers = [n for n, _ in held]
            assert len(numbers) == len(set(numbers)), f"{name}: an attempt submitted twice: {held}"
            assert held == recorded, f"{name}: DLI holds {held}, status records {recorded}"
            assert numbers == list(range(1, len(held) + 1)), f"{name}: attempts {numbers}"
            statuses[name] = status
        return statuses


@pytest.fixture
def audit(jobs: Jobs, emulator: Emulator) -> Audit:
    return Audit(jobs, emulator)


def _capture(obj: dict[str, Any]) -> None:
    """With ``DLI_CAPTURE_STATUSES=<dir>``, keep one real object per phase (GitOps fixtures)."""
    folder = os.environ.get("DLI_CAPTURE_STATUSES")
    if not folder:
        return
    keep = ("name", "namespace", "uid", "generation", "creationTimestamp", "finalizers")
    meta = {k: v for k, v in obj["metadata"].items() if k in keep}
    phase = obj["status"]["phase"]
    header = f"# A DliBatchJob in phase {phase}, captured from an end-to-end run.\n"
    doc = {**obj, "metadata": meta}
    (Path(folder) / f"{phase.lower()}.yaml").write_text(header + yaml.safe_dump(doc))


class Replicas:
    """Replicas of one namespace and their handovers: the one place that knows the mechanism.

    Lease-based shards (issue 18): every replica is active and owns its share of the jobs by
    consistent hashing; a replica that joins takes a share over at once, one that leaves with
    SIGTERM deletes its Lease so the others take its share at once, and a SIGKILLed one's share
    moves when its Lease expires (``lease`` seconds, by the survivors' own clocks). Tests say
    only ``replica(s)``, ``join``, ``leave``, ``restart`` and ``pause``, so their assertions hold
    for any mechanism. Each returns once every replica still serving sees the same members.
    ``gap_seconds`` is the longest a handover may leave a job with no replica serving it.
    """

    def __init__(
        self, kube: Any, namespace: str, start: Callable[..., Operator], env: dict[str, str]
    ) -> None:
        self.lease, renew = 5, 1
        self.gap_seconds = self.lease + renew + 5.0
        self.start, self.joined = start, 0
        self.env = {
            **env,
            "DLI_OPERATOR_SHARDING__ENABLED": "true",
            # The operator's RBAC (deploy/base) grants Leases in its own namespace only; one
            # ring per test namespace keeps tests apart.
            "DLI_OPERATOR_SHARDING__NAMESPACE": "dli-operator-system",
            "DLI_OPERATOR_SHARDING__RING": namespace,
            "DLI_OPERATOR_SHARDING__LEASE_SECONDS": str(self.lease),
            "DLI_OPERATOR_SHARDING__RENEW_SECONDS": str(renew),
        }
        self.names: dict[int, str] = {}
        self.serving: dict[str, Operator] = {}
        """The replicas expected in the ring, by name (started, not left, not paused)."""

    def replica(self, name: str) -> Operator:
        """Start a replica named ``name``; returns once every replica sees it."""
        return self.replicas(name)[0]

    def replicas(self, *names: str) -> list[Operator]:
        """Start replicas named ``names`` at once; returns once they all see each other."""
        ops = [self.start(env={**self.env, "DLI_OPERATOR_SHARDING__IDENTITY": n}) for n in names]
        for name, op in zip(names, ops, strict=True):
            self.names[id(op)] = name
            self.serving[name] = op
        self._wait_for_ring()
        return ops

    def join(self, name: str | None = None) -> Operator:
        """A replica joins and takes jobs over; returns once every replica sees it.

        ``name``: the identity of one that left, returning (a StatefulSet pod restarted)."""
        assert self.serving, "start the first replica with replica()"
        if name is None:
            name = f"joiner-{self.joined}"
            self.joined += 1
        return self.replica(name)

    def leave(self, op: Operator, kill: bool) -> None:
        """``op`` leaves (SIGKILL or SIGTERM); returns once its jobs are served again."""
        assert op.process is not None
        name = self.names[id(op)]
        self.serving.pop(name)
        assert self.serving, "the last replica cannot leave: nobody would take its jobs"
        # SIGTERM is not waited for: the replica may take its stop grace to exit.
        op.stopped = not kill
        op.process.send_signal(signal.SIGKILL if kill else signal.SIGTERM)
        self._wait_for_ring(self.gap_seconds + 30)

    def restart(self, op: Operator, *, moved: bool) -> Operator:
        """SIGKILL ``op`` and start it again under the same name, as a StatefulSet restarts a
        pod; with ``moved``, only after its share moved to the others (its Lease expired),
        else at once, so the new process finds its own Lease still live and its claims made."""
        name = self.names[id(op)]
        if moved:
            self.leave(op, kill=True)
        else:
            assert op.process is not None
            op.kill()
            self.serving.pop(name)
        return self.replica(name)

    def pause(self, op: Operator, seconds: float) -> None:
        """SIGSTOP ``op`` for ``seconds`` (past its Lease: its share moves), then SIGCONT; it
        wakes with a stale view, must fence itself until it renewed, and takes its share back.
        Returns once every replica sees it again."""
        assert op.process is not None
        name = self.names[id(op)]
        self.serving.pop(name)
        began = time.monotonic()
        op.process.send_signal(signal.SIGSTOP)
        try:
            self._wait_for_ring(self.gap_seconds + 30)
            time.sleep(max(0.0, seconds - (time.monotonic() - began)))
        finally:
            op.process.send_signal(signal.SIGCONT)
        self.serving[name] = op
        self._wait_for_ring()

    @staticmethod
    def ring(op: Operator) -> set[str] | None:
        """The members in the last ``shard ring`` line of ``op``'s log (shards/membership.py)."""
        text = op.log.read_text(errors="replace") if op.log.exists() else ""
        lines = [line for line in text.splitlines() if "shard ring " in line and "members" in line]
        if not lines:
            return None
        return {part.strip() for part in lines[-1].split("members", 1)[1].split(",")}

    def _wait_for_ring(self, timeout: float = 60.0) -> None:
        """Until every serving replica's ring is the serving replicas."""
        members = set(self.serving)
        deadline = time.monotonic() + timeout
        while wrong := {n: r for n, op in self.serving.items() if (r := self.ring(op)) != members}:
            assert time.monotonic() < deadline, (
                f"rings {wrong} are not {sorted(members)} within {timeout}s"
            )
            time.sleep(0.2)
