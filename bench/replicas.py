"""Operator replicas for the scale benchmark: CPU quotas, sharding settings and resharding.

``--replicas N`` starts N operator processes with the sharding settings
(``DLI_OPERATOR_SHARDING__*``; an operator without sharding ignores them and every replica
serves every job), each with its own CPU budget (``--cpu-quota``):

- ``taskset``: replica i is pinned to core ``i % cores`` with ``taskset -c`` (sched_setaffinity).
  The control plane, the emulator and the bench are not pinned and share every core.
- ``cfs``: replica i runs in its own cgroup with a CFS quota of ``--replica-cores`` cores (1 by
  default; cgroup v2 ``cpu.max`` or v1 ``cpu.cfs_quota_us``), unpinned. On a 2-core machine that
  also runs the control plane and the emulator, a quota under one core (0.5: N replicas take
  N/2 cores) keeps the replicas, not the API server, the scarce part the ratio measures.
- ``none``: no limit.

``--reshard-every S`` SIGKILLs one replica (in turn) every S seconds and starts it again after
``--reshard-down`` seconds, under load.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from procs import FINAL, usage

CGROUP_ROOT = Path("/sys/fs/cgroup")
CFS_PERIOD_US = 100_000

Spawn = Callable[[list[str], Path, dict[str, str]], subprocess.Popen[bytes]]


@dataclass
class Replica:
    index: int
    metrics_port: int
    log: Path
    proc: subprocess.Popen[bytes] | None = None
    cgroup: Path | None = None
    killed: bool = False  # by the bench: a dead process is expected until it restarts
    starts: list[float] = field(default_factory=list)
    peak_rss_mb: float = 0.0  # the highest VmHWM of any of its processes

    @property
    def identity(self) -> str:
        return f"replica-{self.index}"


def cgroup_cpu_dir() -> tuple[Path, str] | None:
    """Where a CPU-quota cgroup can be made here, and its kind ("v2" or "v1"), if anywhere."""
    if (CGROUP_ROOT / "cgroup.controllers").exists():
        if "cpu" in (CGROUP_ROOT / "cgroup.controllers").read_text().split():
            return CGROUP_ROOT, "v2"
        return None
    if (CGROUP_ROOT / "cpu" / "cpu.cfs_quota_us").exists():
        return CGROUP_ROOT / "cpu", "v1"
    return None


def describe_quota(mode: str, count: int, cores_each: float = 1.0) -> str:
    cores = os.cpu_count() or 1
    if mode == "taskset":
        pins = ", ".join(f"replica-{i} on core {i % cores}" for i in range(count))
        shared = " (shared: more replicas than cores)" if count > cores else ""
        return f"taskset -c: {pins}{shared}; control plane, emulator and bench unpinned"
    if mode == "cfs":
        found = cgroup_cpu_dir()
        where = f"cgroup {found[1]} under {found[0]}" if found else "no writable cgroup"
        return f"CFS quota of {cores_each:g} core per replica ({where}), unpinned"
    return "no CPU limit"


class Replicas:
    """N operator processes sharing one command line, each with its own env and CPU budget."""

    def __init__(
        self,
        count: int,
        command: list[str],
        env: dict[str, str],
        *,
        workdir: Path,
        namespace: str,
        quota: str,
        spawn: Spawn,
        cores_each: float = 1.0,
        free_port: Callable[[], int],
    ) -> None:
        self.command, self.env, self.quota, self.spawn = command, env, quota, spawn
        self.cores_each = cores_each
        self.namespace = namespace
        self.replicas = [
            Replica(i, free_port(), workdir / f"operator-{i}.log") for i in range(count)
        ]
        self.lock = threading.Lock()
        if quota == "cfs" and cgroup_cpu_dir() is None:
            raise RuntimeError("--cpu-quota cfs: no writable cgroup with the cpu controller")

    def start(self, replica: Replica) -> None:
        env = dict(self.env)
        env.update(
            DLI_OPERATOR_METRICS__PORT=str(replica.metrics_port),
            DLI_OPERATOR_SHARDING__ENABLED="true",
            DLI_OPERATOR_SHARDING__IDENTITY=replica.identity,
            DLI_OPERATOR_SHARDING__NAMESPACE=self.namespace,
            DLI_OPERATOR_SHARDING__LEASE_SECONDS="15",
        )
        command = self.command
        if self.quota == "taskset":
            core = replica.index % (os.cpu_count() or 1)
            command = ["taskset", "-c", str(core), *command]
        proc = self.spawn(command, replica.log, env)
        if self.quota == "cfs":
            replica.cgroup = _limit(proc.pid, replica, self.cores_each)
        with self.lock:
            replica.proc, replica.killed = proc, False
            replica.starts.append(time.time())

    def start_all(self) -> None:
        for replica in self.replicas:
            self.start(replica)

    def kill(self, replica: Replica) -> None:
        with self.lock:
            replica.killed = True
            proc = replica.proc
        if proc is not None and proc.poll() is None:
            self.sample_usage()
            proc.send_signal(signal.SIGKILL)
            proc.wait()

    def check(self) -> None:
        """Raise if a replica exited that the bench did not kill."""
        with self.lock:
            for r in self.replicas:
                if r.proc is not None and not r.killed and r.proc.poll() is not None:
                    raise RuntimeError(f"{r.identity} exited ({r.proc.returncode}); see {r.log}")

    def live_pids(self) -> list[int]:
        with self.lock:
            return [r.proc.pid for r in self.replicas if r.proc and r.proc.poll() is None]

    def sample_usage(self) -> None:
        """Remember each replica's peak RSS (a killed process takes its VmHWM with it)."""
        with self.lock:
            for r in self.replicas:
                if r.proc is not None and (u := usage(r.proc.pid)) is not None:
                    r.peak_rss_mb = max(r.peak_rss_mb, u.peak_rss_mb)

    def usage(self) -> list[dict[str, Any]]:
        self.sample_usage()
        out = []
        for r in self.replicas:
            u = usage(r.proc.pid) if r.proc else None
            row: dict[str, Any] = {"replica": r.identity, "starts": len(r.starts)}
            row.update(vars(u) if u else {"rss_mb": None, "cpu_seconds": None})
            row["peak_rss_mb"] = max(r.peak_rss_mb, row.get("peak_rss_mb") or 0.0)
            out.append(row)
        return out

    def stop_all(self, stop: Callable[[subprocess.Popen[bytes] | None], None]) -> None:
        for r in self.replicas:
            stop(r.proc)
            if r.cgroup is not None:
                with contextlib.suppress(OSError):
                    r.cgroup.rmdir()


def _limit(pid: int, replica: Replica, cores: float) -> Path:
    """Move ``pid`` into a new cgroup limited to ``cores`` cores; return the cgroup."""
    found = cgroup_cpu_dir()
    assert found is not None
    root, kind = found
    group = root / f"dli-bench-{os.getpid()}-{replica.identity}"
    group.mkdir(exist_ok=True)
    quota = round(CFS_PERIOD_US * cores)
    if kind == "v2":
        (group / "cpu.max").write_text(f"{quota} {CFS_PERIOD_US}\n")
    else:
        (group / "cpu.cfs_period_us").write_text(f"{CFS_PERIOD_US}\n")
        (group / "cpu.cfs_quota_us").write_text(f"{quota}\n")
    (group / "cgroup.procs").write_text(f"{pid}\n")
    return group


class Resharder(threading.Thread):
    """Every ``every`` s, SIGKILL the next replica and start it again ``down`` s later."""

    def __init__(self, replicas: Replicas, every: float, down: float) -> None:
        super().__init__(daemon=True, name="reshard")
        self.replicas, self.every, self.down = replicas, every, down
        self.halt = threading.Event()
        self.events: list[dict[str, Any]] = []

    def run(self) -> None:
        turn = 0
        while not self.halt.wait(self.every):
            replica = self.replicas.replicas[turn % len(self.replicas.replicas)]
            turn += 1
            killed_at = time.time()
            self.replicas.kill(replica)
            if self.halt.wait(self.down):
                break
            self.replicas.start(replica)
            self.events.append(
                {"replica": replica.identity, "killed": killed_at, "restarted": time.time()}
            )


class StrandedSampler(threading.Thread):
    """Every ``period`` s, the jobs not final whose status has not changed for over ``limit`` s.

    Reads the Watcher's record (the last status change, or the create, of each object): a job
    stranded at any sample counts once; the longest gap seen is kept. Meaningful when a job's
    every step is shorter than ``limit`` (the emulator's start and run seconds below two polls)
    and the DLI limit does not hold jobs back (``--no-limit``).
    """

    def __init__(self, watcher: Any, limit: float, period: float = 2.0) -> None:
        super().__init__(daemon=True, name="stranded")
        self.watcher, self.limit, self.period = watcher, limit, period
        self.halt = threading.Event()
        self.stranded: dict[str, float] = {}  # name -> longest gap seen
        self.samples = 0

    def run(self) -> None:
        while not self.halt.wait(self.period):
            self.sample(time.time())

    def sample(self, now: float) -> None:
        with self.watcher.lock:
            for name, seen in self.watcher.seen.items():
                since = seen.last_change or seen.created or seen.first_event
                if since is None or FINAL & seen.phases.keys():
                    continue
                gap = now - since
                if gap > self.limit:
                    self.stranded[name] = max(gap, self.stranded.get(name, 0.0))
        self.samples += 1

    def result(self) -> dict[str, Any]:
        worst = sorted(self.stranded.items(), key=lambda kv: -kv[1])
        return {
            "limit_seconds": self.limit,
            "samples": self.samples,
            "stranded": len(self.stranded),
            "longest_gap_seconds": round(worst[0][1], 1) if worst else None,
            "examples": [name for name, _ in worst[:5]],
        }
