"""The chaos suite's fixtures: the end-to-end ones, a restartable emulator, and the audit.

The end-to-end fixtures (tests/e2e/conftest.py: operators as processes, ``Jobs``, the
ServiceAccount kubeconfig) are loaded from that file, so both suites drive the operator the
same way. What is added here:

- ``chaos_emulator``: the emulator as a process with a state file, which a scenario can stop
  (DLI outage: connection refused), SIGKILL and restart on the same port with the same jobs.
- ``RateSampler``: DLI requests per second, sampled from the emulator's counters.
- ``Progress`` (tests/e2e/progress.py): every job's status sampled through the scenario, for
  the audit's Stranded column; a scenario calls ``audit.progress.excuse`` for the seconds in
  which it left the jobs without a replica, and sets ``audit.progress.timings`` when it changes
  the poll interval or the DLI rate.
- ``audit``: the one audit every scenario ends with (see ``Findings``), and ``record``, which
  writes each scenario's figures to a JSON file for docs/reliability.md (tests/chaos/report.py).

``DLI_CHAOS_SCALE=short`` (the default, run by ``make test``) or ``full`` (``make chaos``).
"""

from __future__ import annotations

import importlib.util
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import pytest
from tests.e2e.progress import Progress, Timings

from dli_operator import controlplane

REPO = Path(__file__).resolve().parents[2]


def _load_e2e_fixtures() -> Any:
    path = REPO / "tests" / "e2e" / "conftest.py"
    spec = importlib.util.spec_from_file_location("dli_chaos_e2e_fixtures", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


e2e = _load_e2e_fixtures()
# Re-exported so pytest finds them for the tests of this folder.
operator_kubeconfig = e2e.operator_kubeconfig
operator_env = e2e.operator_env
start_operator = e2e.start_operator
jobs = e2e.jobs
ACCESS_KEY, SECRET_KEY, CLI = e2e.ACCESS_KEY, e2e.SECRET_KEY, e2e.CLI

SCALE = os.environ.get("DLI_CHAOS_SCALE", "short")
FINAL = {"Succeeded", "Failed", "Cancelled"}
# What each final phase must be in DLI terms (dli_02_0124 table 7).
DLI_STATE_OF = {"Succeeded": {"success"}, "Failed": {"dead"}, "Cancelled": {"dead"}}


def scaled(short: int, full: int) -> int:
    """The size of a scenario at the chosen scale."""
    return full if SCALE == "full" else short


@dataclass
class ChaosEmulator(e2e.Emulator):  # type: ignore[misc,name-defined]
    """The emulator process, with a state file, that can go away and come back."""

    state_file: Path = Path()
    log: Path = Path()
    args: list[str] = field(default_factory=list)

    def stop(self, sig: int = signal.SIGTERM) -> None:
        """Down: from now on every DLI call is refused at connect."""
        if self.process.poll() is None:
            self.process.send_signal(sig)
            self.process.wait(timeout=15)

    def start(self) -> None:
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(self.args, stdout=out, stderr=subprocess.STDOUT)
        controlplane.wait_for_port(self.port)

    def total_calls(self) -> int:
        return sum(self.calls().values())


@pytest.fixture
def emulator(tmp_path: Path) -> Iterator[ChaosEmulator]:
    """Replaces the end-to-end emulator: same command line, plus a state file."""
    port = controlplane.free_port()
    state = tmp_path / "emulator-state.jsonl"
    args = [*CLI, "emulator", "--port", str(port), "--start-seconds", "1", "--run-seconds", "2"]
    args += ["--state-file", str(state)]
    emu = ChaosEmulator(port, None, state, tmp_path / "emulator.log", args)  # type: ignore[arg-type]
    emu.start()
    try:
        yield emu
    finally:
        emu.stop()


class RateSampler:
    """DLI requests per second, from the emulator's counters, once a second in a thread."""

    def __init__(self, emulator: ChaosEmulator) -> None:
        self.emulator = emulator
        self.peak = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        last: tuple[float, int] | None = None
        while not self._stop.wait(1.0):
            try:
                total = self.emulator.total_calls()
            except OSError:  # the emulator is down (an outage scenario)
                last = None
                continue
            now = time.monotonic()
            if last is not None and total >= last[1]:  # a restarted emulator counts from 0
                self.peak = max(self.peak, (total - last[1]) / (now - last[0]))
            last = (now, total)

    def stop(self) -> float:
        self._stop.set()
        self._thread.join(timeout=5)
        return round(self.peak, 1)


@pytest.fixture
def rate(emulator: ChaosEmulator) -> Iterator[RateSampler]:
    sampler = RateSampler(emulator)
    yield sampler
    sampler.stop()


@dataclass
class Findings:
    """What the audit found; every count must be 0."""

    duplicates: int = 0
    """DLI batches beyond the first for one (job, attempt)."""
    lost: int = 0
    """DLI batches no status records, recorded batches DLI does not have, jobs without status."""
    stuck: int = 0
    """Jobs neither final nor correctly running, or final in a phase DLI does not agree with."""
    leaked: int = 0
    """DLI batches of deleted (Cancel policy) jobs still running."""
    stranded: int = 0
    """Jobs with work to do and a replica to do it, and no progress for over two poll intervals
    beyond what a documented wait explains (tests/e2e/progress.py)."""
    operator_exits: int = 0
    """Operator processes that ended without being asked to."""
    secret_hits: int = 0
    """AK/SK/token occurrences in operator logs, Events and statuses."""
    problems: list[str] = field(default_factory=list)

    def clean(self) -> bool:
        counts = (self.duplicates, self.lost, self.stuck, self.stranded, self.leaked)
        return not any((*counts, self.operator_exits, self.secret_hits))


class Audit:
    """The one audit every scenario ends with (issue 10: "the same audit")."""

    def __init__(self, kube, namespace: str, emulator: ChaosEmulator) -> None:
        self.kube, self.namespace, self.emulator = kube, namespace, emulator
        self.deleted: set[tuple[str, str]] = set()
        self.secrets: set[str] = {ACCESS_KEY, SECRET_KEY}
        self.logs: list[Path] = []
        self.progress = Progress(self.items, emulator.jobs, Timings())

    def items(self) -> list[dict[str, Any]]:
        out = self.kube.kubectl("get", "dlibatchjobs", "-n", self.namespace, "-o", "json")
        return list(json.loads(out.stdout)["items"])

    def forget(self, name: str) -> None:
        """Note a job about to be deleted: its DLI batches must end up not running."""
        for item in self.items():
            if item["metadata"]["name"] == name:
                self.deleted.add((name, _uid8(item)))

    def wait_settled(self, timeout: float, *, also: frozenset[str] = frozenset()) -> None:
        """Until every job is final (or in one of the phases ``also`` allows), or ``timeout``."""
        deadline = time.monotonic() + timeout
        allowed = FINAL | also
        while time.monotonic() < deadline:
            phases = [(i.get("status") or {}).get("phase") for i in self.items()]
            if all(p in allowed for p in phases):
                return
            time.sleep(1.0)

    def run(self, operators: list[Any], *, expected_exits: int = 0) -> Findings:
        found = Findings()
        for stranded in self.progress.stop():
            found.stranded += 1
            found.problems.append(
                f"{stranded.name}: stranded, no progress for {stranded.seconds:.0f}s "
                f"({stranded.status})"
            )
        batches = self.emulator.jobs()
        items = self.items()
        owners = {(i["metadata"]["name"], _uid8(i)): i for i in items}
        held: dict[tuple[str, str], list[dict[str, Any]]] = {}
        for batch in batches:
            name, uid8, attempt = (batch.get("name") or "?-?-0").rsplit("-", 2)
            key = (name, uid8)
            if key in self.deleted:
                if batch["state"] not in ("success", "dead"):
                    found.leaked += 1
                    found.problems.append(f"{batch['name']}: deleted job's batch still running")
                continue
            if key not in owners:
                found.lost += 1
                found.problems.append(f"{batch['name']}: a DLI batch no DliBatchJob owns")
                continue
            held.setdefault(key, []).append({**batch, "attempt": int(attempt)})
        for key, item in owners.items():
            self._one(found, key, item, held.get(key, []))
        if found.duplicates and self.logs:  # what a maintainer needs to see why
            events = self.kube.kubectl("get", "events", "-n", self.namespace, "-o", "json")
            (self.logs[0].parent / "events.json").write_text(events.stdout)
        found.operator_exits = _unasked_exits(operators) - expected_exits
        found.secret_hits = self._secret_hits(found)
        return found

    def _one(
        self,
        found: Findings,
        key: tuple[str, str],
        item: dict[str, Any],
        held: list[dict[str, Any]],
    ) -> None:
        name = key[0]
        status = item.get("status") or {}
        numbers = [b["attempt"] for b in held]
        extra = len(numbers) - len(set(numbers))
        if extra:
            found.duplicates += extra
            found.problems.append(
                f"{name}: attempts posted twice: {sorted(numbers)}; {_why(status)}"
            )
        recorded = {(a.get("attempt"), a.get("batchId")) for a in status.get("attempts") or []}
        in_dli = {(b["attempt"], b["id"]) for b in held}
        unrecorded = {n for n, _ in in_dli} - {n for n, _ in recorded}
        missing = {r for r in recorded if r[1] and r not in in_dli}
        if unrecorded or missing or not status:
            found.lost += len(unrecorded) + len(missing) + (0 if status else 1)
            found.problems.append(f"{name}: DLI {sorted(in_dli)}, status {sorted(recorded)}")
        phase, batch_id = status.get("phase"), status.get("batchId")
        remote = next((b for b in held if b["id"] == batch_id), None)
        if not self._agrees(phase, status, remote):
            found.stuck += 1
            state = remote["state"] if remote else None
            found.problems.append(f"{name}: phase {phase} / {status.get('state')}, DLI {state}")

    @staticmethod
    def _agrees(phase: str | None, status: dict[str, Any], remote: dict[str, Any] | None) -> bool:
        if phase == "Suspended":
            return remote is None or remote["state"] in ("success", "dead")
        if phase in FINAL:
            # A job failed before any batch (a permanent DLI refusal) has nothing to agree with.
            return remote is None or remote["state"] in DLI_STATE_OF[phase]
        # Not final: only "correctly running" counts, i.e. DLI runs it too.
        return remote is not None and remote["state"] not in ("success", "dead")

    def _secret_hits(self, found: Findings) -> int:
        sources = {str(p.name): p.read_text(errors="replace") for p in self.logs if p.exists()}
        events = self.kube.kubectl("get", "events", "-n", self.namespace, "-o", "json").stdout
        sources |= {
            "events": events,
            "statuses": json.dumps([i.get("status") for i in self.items()]),
        }
        hits = 0
        for where, text in sources.items():
            for secret in self.secrets:
                if count := text.count(secret):
                    hits += count
                    found.problems.append(f"{count} x {secret[:4]}... in {where}")
        return hits


def _why(status: dict[str, Any]) -> str:
    """How the job says it got its batch: the Submitted condition and the attempts' reasons."""
    conditions = status.get("conditions") or []
    submitted = next((c for c in conditions if c.get("type") == "Submitted"), {})
    reasons = [a.get("reason") for a in status.get("attempts") or []]
    return f"Submitted {submitted.get('reason')}: {submitted.get('message')}; attempts {reasons}"


def _uid8(item: dict[str, Any]) -> str:
    return str(item["metadata"]["uid"]).replace("-", "")[:8]


def _unasked_exits(operators: list[Any]) -> int:
    """Operators that exited on their own: not killed (-9), not stopped (SIGTERM), not paused."""
    asked = {-signal.SIGKILL, -signal.SIGTERM}
    count = 0
    for op in operators:
        code = op.process.poll() if op.process else None
        if code is not None and code not in asked and not getattr(op, "stopped", False):
            count += 1
    return count


@pytest.fixture
def audit(
    kube, namespace: str, emulator: ChaosEmulator, operator_kubeconfig: Path
) -> Iterator[Audit]:
    found = Audit(kube, namespace, emulator)
    token = next(
        (u["user"]["token"] for u in _yaml(operator_kubeconfig)["users"] if "token" in u["user"]),
        None,
    )
    if token:
        found.secrets.add(token)
    found.progress.start()
    yield found
    found.progress.stop()


def _yaml(path: Path) -> dict[str, Any]:
    import yaml

    return dict(yaml.safe_load(path.read_text()))


RESULTS = Path(os.environ.get("DLI_CHAOS_RESULTS", REPO / ".local" / "chaos" / f"{SCALE}.json"))


@dataclass
class Result:
    """One scenario's figures, as docs/reliability.md shows them."""

    scenario: str
    iterations: int
    duplicates: int
    lost: int
    stuck: int
    stranded: int
    leaked: int
    operator_exits: int
    secret_hits: int
    peak_dli_rps: float
    seconds: float
    notes: str = ""
    scale: str = SCALE
    problems: list[str] = field(default_factory=list)


Record = Callable[..., Result]


@pytest.fixture
def record(rate: RateSampler) -> Record:
    """``record(scenario, iterations, findings, started, notes)``: print and store the figures."""

    def write(
        scenario: str, iterations: int, found: Findings, started: float, notes: str = ""
    ) -> Result:
        result = Result(
            scenario=scenario,
            iterations=iterations,
            duplicates=found.duplicates,
            lost=found.lost,
            stuck=found.stuck,
            stranded=found.stranded,
            leaked=found.leaked,
            operator_exits=found.operator_exits,
            secret_hits=found.secret_hits,
            peak_dli_rps=rate.stop(),
            seconds=round(time.monotonic() - started),
            notes=notes,
            problems=found.problems[:60],
        )
        RESULTS.parent.mkdir(parents=True, exist_ok=True)
        stored = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
        stored[scenario] = {**asdict(result), "commit": _commit()}
        RESULTS.write_text(json.dumps(stored, indent=2) + "\n")
        print(f"\nCHAOS {json.dumps(asdict(result))}")
        return result

    return write


def _commit() -> str:
    out = subprocess.run(
        ["git", "-C", str(REPO), "describe", "--always", "--dirty", "--abbrev=7"],
        capture_output=True,
        text=True,
    )
    return out.stdout.strip()


def assert_clean(found: Findings) -> None:
    assert found.clean(), "\n".join([str(asdict(found) | {"problems": None}), *found.problems])
