"""Scale benchmark: N DliBatchJobs through a real kube-apiserver, the operator and the emulator.

Starts its own control plane (etcd + kube-apiserver), the DLI emulator and one operator process,
creates ``--jobs`` DliBatchJobs as fast as the API server takes them, and measures how long the
operator takes to submit them all and to see them all finish, how many DLI calls it made (per
operation and per job), whether any job was submitted twice, the status lag (DLI state change to
status), and what the operator, kube-apiserver and etcd cost in memory and CPU.

    .venv/bin/python bench/scale.py --jobs 1000
    .venv/bin/python bench/scale.py --jobs 10000 --rps 1000 --burst 1000

Every process it starts is stopped when it ends, also on Ctrl-C or SIGTERM. See
docs/benchmarks.md for what the figures mean and the recorded runs.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import random
import shlex
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "operator"))

from dli_operator import controlplane  # noqa: E402

GROUP, VERSION, PLURAL = "dli.dev", "v1alpha1", "dlibatchjobs"
PROJECT_ID = "0123456789abcdef0123456789abcdef"
CLI = str(Path(sys.executable).parent / "dli-operator")
CRD = ROOT / "crds" / "dlibatchjobs.dli.dev.yaml"
FINAL = {"Succeeded", "Failed", "Cancelled"}
CLK_TCK = os.sysconf("SC_CLK_TCK")
RESULTS = ROOT / "bench" / "results"
# The timeline's resolution: cumulative submitted and final counts every this many seconds.
TIMELINE_BUCKET_SECONDS = 10


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--jobs", type=int, default=1000, help="DliBatchJobs to create")
    p.add_argument("--threads", type=int, default=8, help="threads creating the objects")
    p.add_argument("--rps", type=float, default=10.0, help="DLI_OPERATOR_DLI__REQUESTS_PER_SECOND")
    p.add_argument("--burst", type=int, default=20, help="DLI_OPERATOR_DLI__BURST")
    p.add_argument(
        "--poll-interval", type=float, default=10.0, help="..._RECONCILE__POLL_INTERVAL_SECONDS"
    )
    p.add_argument("--start-seconds", type=float, default=1.0, help="emulator: time in starting")
    p.add_argument("--run-seconds", type=float, default=5.0, help="emulator: time in running")
    p.add_argument(
        "--create-first",
        action="store_true",
        help="create every object before starting the operator (a backlog, as after a restart)",
    )
    p.add_argument("--timeout", type=float, default=7200.0, help="give up after this many s")
    p.add_argument("--workdir", type=Path, help="keep logs here (default: a temp dir, deleted)")
    p.add_argument("--output", type=Path, help="also write the figures as JSON here")
    p.add_argument("--sample", type=int, default=0, help="status lag from N random jobs (0: all)")
    p.add_argument(
        "--plot",
        action="store_true",
        help=f"only draw PNGs from the recorded runs in {RESULTS.relative_to(ROOT)} (bench extra)",
    )
    return p.parse_args(argv)


# --- processes --------------------------------------------------------------------------------


def spawn(args: list[str], log: Path, env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:
        return subprocess.Popen(
            args,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,  # Ctrl-C reaches only us; we stop the children in order
            preexec_fn=controlplane.die_with_parent,
        )


def stop(proc: subprocess.Popen[bytes] | None, grace: float = 40.0) -> None:
    if proc is None or proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def get_json(url: str, timeout: float = 120.0) -> Any:
    with urllib.request.urlopen(url, timeout=timeout) as response:
        return json.loads(response.read())


def get_text(url: str, timeout: float = 30.0) -> str:
    with urllib.request.urlopen(url, timeout=timeout) as response:
        return str(response.read().decode())


@dataclass
class Usage:
    """Peak RSS and CPU seconds of a process, from /proc."""

    peak_rss_mb: float
    rss_mb: float
    cpu_seconds: float


def usage(pid: int) -> Usage | None:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)

    def kb(key: str) -> float:
        return int(fields[key].split()[0]) / 1024

    # Fields after the ")" of the command name; utime and stime are fields 14 and 15.
    rest = stat.rsplit(")", 1)[1].split()
    cpu = (int(rest[11]) + int(rest[12])) / CLK_TCK
    return Usage(round(kb("VmHWM"), 1), round(kb("VmRSS"), 1), round(cpu, 1))


# --- the watch: when each object first showed what ---------------------------------------------


@dataclass
class Seen:
    created: float | None = None  # the create call returned (bench clock, epoch seconds)
    first_event: float | None = None
    batch_id: str | None = None
    submitted: float | None = None  # status.batchId first seen
    states: dict[str, float] = field(default_factory=dict)  # status.state -> first seen
    phases: dict[str, float] = field(default_factory=dict)  # status.phase -> first seen
    status_writes: int = 0  # watch events that changed status


class Watcher(threading.Thread):
    """A watch on the namespace's DliBatchJobs, recording the first time each state was seen."""

    def __init__(self, api_client: Any, namespace: str) -> None:
        super().__init__(daemon=True, name="watch")
        from kubernetes import client

        self.api = client.CustomObjectsApi(api_client)
        self.namespace = namespace
        self.seen: dict[str, Seen] = {}
        self.lock = threading.Lock()
        self.halt = threading.Event()
        self.events = 0
        self.submitted = 0
        self.final = 0
        self._last_status: dict[str, Any] = {}

    def counts(self) -> tuple[int, int, int]:
        with self.lock:
            return len(self.seen), self.submitted, self.final

    def run(self) -> None:
        from kubernetes import watch
        from kubernetes.client.exceptions import ApiException

        rv = ""
        while not self.halt.is_set():
            w = watch.Watch()
            try:
                if not rv:
                    listing = self.api.list_namespaced_custom_object(
                        GROUP, VERSION, self.namespace, PLURAL
                    )
                    for item in listing["items"]:
                        self._record(item, time.time())
                    rv = listing["metadata"]["resourceVersion"]
                for event in w.stream(
                    self.api.list_namespaced_custom_object,
                    GROUP,
                    VERSION,
                    self.namespace,
                    PLURAL,
                    resource_version=rv,
                    allow_watch_bookmarks=True,
                    timeout_seconds=300,
                ):
                    now = time.time()
                    obj = event["object"]
                    rv = obj["metadata"]["resourceVersion"]
                    if event["type"] in ("ADDED", "MODIFIED"):
                        self._record(obj, now)
                    if self.halt.is_set():
                        break
            except ApiException as exc:
                if exc.status == 410:
                    rv = ""  # too old: list again
                else:
                    time.sleep(0.5)
            except Exception:
                time.sleep(0.5)
            finally:
                w.stop()

    def _record(self, obj: dict[str, Any], now: float) -> None:
        name = obj["metadata"]["name"]
        status = obj.get("status") or {}
        with self.lock:
            self.events += 1
            seen = self.seen.setdefault(name, Seen())
            if seen.first_event is None:
                seen.first_event = now
            if status != self._last_status.get(name):
                seen.status_writes += 1
                self._last_status[name] = status
            if status.get("batchId") and seen.submitted is None:
                seen.submitted, seen.batch_id = now, status["batchId"]
                self.submitted += 1
            state, phase = status.get("state"), status.get("phase")
            if state and state not in seen.states:
                seen.states[state] = now
            if phase and phase not in seen.phases:
                seen.phases[phase] = now
                if phase in FINAL:
                    self.final += 1


# --- the benchmark ----------------------------------------------------------------------------


def manifest(name: str) -> dict[str, Any]:
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "DliBatchJob",
        "metadata": {"name": name},
        "spec": {
            "queue": "default",
            "file": "obs://bench/jars/spark-examples.jar",
            "className": "org.apache.spark.examples.SparkPi",
            "args": ["100"],
        },
    }


def create_all(
    kubeconfig: Path, namespace: str, names: list[str], threads: int, watcher: Watcher | None
) -> tuple[float, float, int]:
    """Create the objects from ``threads`` threads; return (start, end, errors)."""
    from kubernetes import client, config

    local = threading.local()

    def api() -> Any:
        if not hasattr(local, "api"):
            cfg = client.Configuration()
            config.load_kube_config(str(kubeconfig), client_configuration=cfg)
            cfg.connection_pool_maxsize = 2
            local.api = client.CustomObjectsApi(client.ApiClient(cfg))
        return local.api

    errors = 0
    lock = threading.Lock()

    def create(name: str) -> None:
        nonlocal errors
        for attempt in range(5):
            try:
                api().create_namespaced_custom_object(
                    GROUP, VERSION, namespace, PLURAL, manifest(name)
                )
                break
            except client.exceptions.ApiException as exc:
                if exc.status == 409:  # a retry of a create that went through
                    break
                if attempt == 4:
                    with lock:
                        errors += 1
                    return
                time.sleep(0.2 * (attempt + 1))
        if watcher is not None:
            with watcher.lock:
                watcher.seen.setdefault(name, Seen()).created = time.time()

    begin = time.time()
    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(create, names))
    return begin, time.time(), errors


class LoadSampler(threading.Thread):
    """The 1-minute load average and process usage, every few seconds."""

    def __init__(self) -> None:
        super().__init__(daemon=True, name="load")
        self.samples: list[float] = []
        self.halt = threading.Event()

    def run(self) -> None:
        while not self.halt.wait(5.0):
            self.samples.append(os.getloadavg()[0])


def percentiles(values: list[float]) -> dict[str, float] | None:
    if not values:
        return None
    values = sorted(values)

    def at(q: float) -> float:
        return round(values[min(len(values) - 1, int(q * len(values)))], 2)

    return {
        "n": len(values),
        "min": round(values[0], 2),
        "p50": at(0.50),
        "p90": at(0.90),
        "p99": at(0.99),
        "max": round(values[-1], 2),
        "mean": round(statistics.fmean(values), 2),
    }


def machine(bin_dir: Path) -> dict[str, Any]:
    import kopf

    cpu = "?"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    mem = Path("/proc/meminfo").read_text().splitlines()[0].split()[1]

    def version(binary: str) -> str:
        try:
            out = subprocess.run(
                [str(bin_dir / binary), "--version"], capture_output=True, text=True, timeout=10
            )
            return out.stdout.strip().splitlines()[0]
        except (OSError, IndexError, subprocess.SubprocessError):
            return "?"

    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "ram_gb": round(int(mem) / 1024 / 1024, 1),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "kopf": kopf.__version__ if hasattr(kopf, "__version__") else _dist_version("kopf"),
        "kube-apiserver": version("kube-apiserver"),
        "etcd": version("etcd"),
    }


def _dist_version(name: str) -> str:
    from importlib.metadata import version

    return version(name)


def operator_metrics(port: int) -> dict[str, float]:
    """The operator's own ``dli_operator_*`` series (histograms as _count and _sum only)."""
    out: dict[str, float] = {}
    for line in get_text(f"http://127.0.0.1:{port}/metrics").splitlines():
        if line.startswith("#") or not line.strip():
            continue
        key, _, value = line.rpartition(" ")
        keep = key.startswith("dli_operator_") and "_bucket{" not in key
        keep = keep or key.startswith(("process_", "python_gc_objects_collected"))
        if keep and not key.split("{")[0].endswith("_created"):
            with contextlib.suppress(ValueError):
                out[key] = float(value)
    return out


def audit(
    emulator_jobs: list[dict[str, Any]], items: list[dict[str, Any]]
) -> dict[str, int | list[str]]:
    """Every DliBatchJob must own exactly one DLI job, the one its status names."""
    owners = {o["metadata"]["name"]: o for o in items}
    held: dict[str, list[dict[str, Any]]] = {}
    strays = 0
    for job in emulator_jobs:
        name, uid8, _attempt = (job.get("name") or "").rsplit("-", 2)
        owner = owners.get(name)
        if owner is None or owner["metadata"]["uid"].replace("-", "")[:8] != uid8:
            strays += 1
            continue
        held.setdefault(name, []).append(job)
    duplicates = [n for n, jobs in held.items() if len(jobs) > 1]
    missing = [n for n in owners if n not in held]
    mismatched = [
        n
        for n, jobs in held.items()
        if len(jobs) == 1 and (owners[n].get("status") or {}).get("batchId") != jobs[0]["id"]
    ]
    return {
        "dli_jobs": len(emulator_jobs),
        "objects": len(owners),
        "duplicates": len(duplicates),
        "missing": len(missing),
        "batch_id_mismatch": len(mismatched),
        "strays": strays,
        "examples": (duplicates + missing + mismatched)[:5],
    }


def status_lag(
    seen: dict[str, Seen], emulator_jobs: list[dict[str, Any]], sample: int
) -> dict[str, Any]:
    """Seconds from the emulator's state change to the watch showing it in status.state."""
    by_batch = {s.batch_id: name for name, s in seen.items() if s.batch_id}
    jobs = [j for j in emulator_jobs if j["id"] in by_batch]
    if sample and len(jobs) > sample:
        jobs = random.Random(0).sample(jobs, sample)
    lags: dict[str, list[float]] = {}
    for job in jobs:
        states = seen[by_batch[job["id"]]].states
        for step in job["history"]:
            shown = states.get(step["state"])
            if shown is not None:
                lags.setdefault(step["state"], []).append(shown - step["at"] / 1000)
    return {state: percentiles(values) for state, values in sorted(lags.items())}


@contextlib.contextmanager
def interruptible() -> Iterator[None]:
    """SIGTERM behaves like Ctrl-C, so the cleanup below always runs."""

    def raise_interrupt(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, raise_interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def run(args: argparse.Namespace) -> dict[str, Any]:
    from kubernetes import client, config

    namespace = "bench"
    temp = None
    if args.workdir:
        workdir = args.workdir.resolve()
        workdir.mkdir(parents=True, exist_ok=True)
    else:
        temp = tempfile.TemporaryDirectory(prefix="dli-bench-")
        workdir = Path(temp.name)
    bin_dir = controlplane.find_binaries()
    emulator: subprocess.Popen[bytes] | None = None
    operator: subprocess.Popen[bytes] | None = None
    watcher: Watcher | None = None
    sampler = LoadSampler()
    results: dict[str, Any] = {"command": shlex.join([sys.executable, *sys.argv])}
    results["settings"] = {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()}
    results["machine"] = machine(bin_dir)
    results["load_before"] = [round(x, 2) for x in os.getloadavg()]
    try:
        log(f"control plane in {workdir / 'cluster'}")
        plane = controlplane.start(workdir / "cluster", bin_dir=bin_dir)
        pids = json.loads(plane.pidfile.read_text())
        kubectl = ["kubectl", "--kubeconfig", str(plane.kubeconfig)]
        subprocess.run([*kubectl, "apply", "--server-side", "-f", str(CRD)], check=True)
        subprocess.run(
            [*kubectl, "wait", "--for=condition=Established", "crd/dlibatchjobs.dli.dev"],
            check=True,
        )
        subprocess.run([*kubectl, "create", "namespace", namespace], check=True)

        emulator_port = controlplane.free_port()
        emulator = spawn(
            [
                CLI,
                "emulator",
                "--port",
                str(emulator_port),
                "--start-seconds",
                str(args.start_seconds),
                "--run-seconds",
                str(args.run_seconds),
            ],
            workdir / "emulator.log",
        )
        controlplane.wait_for_port(emulator_port)
        emulator_url = f"http://127.0.0.1:{emulator_port}"

        metrics_port = controlplane.free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith("DLI_OPERATOR_")}
        env.update(
            KUBECONFIG=str(plane.kubeconfig),
            DLI_OPERATOR_DLI__ENDPOINT=emulator_url,
            DLI_OPERATOR_DLI__ALLOW_INSECURE_ENDPOINT="true",
            DLI_OPERATOR_DLI__PROJECT_ID=PROJECT_ID,
            DLI_OPERATOR_DLI__ACCESS_KEY="EMULATORAK",
            DLI_OPERATOR_DLI__SECRET_KEY="EMULATORSK",
            DLI_OPERATOR_DLI__REQUESTS_PER_SECOND=str(args.rps),
            DLI_OPERATOR_DLI__BURST=str(args.burst),
            DLI_OPERATOR_RECONCILE__POLL_INTERVAL_SECONDS=str(args.poll_interval),
            DLI_OPERATOR_METRICS__PORT=str(metrics_port),
            DLI_OPERATOR_POLICY__DEFAULT_CREDENTIALS_NAMESPACES=namespace,
        )
        operator_args = [CLI, "run", "--namespace", namespace, "--standalone", "--liveness", ""]

        cfg = client.Configuration()
        config.load_kube_config(str(plane.kubeconfig), client_configuration=cfg)
        watcher = Watcher(client.ApiClient(cfg), namespace)
        watcher.start()
        sampler.start()
        names = [f"bench-{i:05d}" for i in range(args.jobs)]

        def start_operator() -> subprocess.Popen[bytes]:
            proc = spawn(operator_args, workdir / "operator.log", env)
            controlplane.wait_for_port(metrics_port, timeout=60)
            return proc

        if not args.create_first:
            operator = start_operator()
            log(f"operator pid {operator.pid}; creating {args.jobs} DliBatchJobs")
        t0, t_created, create_errors = create_all(
            plane.kubeconfig, namespace, names, args.threads, watcher
        )
        results["create"] = {
            "seconds": round(t_created - t0, 2),
            "per_second": round(args.jobs / max(t_created - t0, 1e-9), 1),
            "errors": create_errors,
            "operator_running": operator is not None,
        }
        log(f"created {args.jobs} in {t_created - t0:.1f}s ({create_errors} errors)")
        if operator is None:
            t0 = time.time()  # the clock starts when the operator does
            operator = start_operator()
            log(f"operator pid {operator.pid} started on a backlog of {args.jobs}")

        deadline = time.monotonic() + args.timeout
        t_submitted = t_done = None
        last = 0.0
        while time.monotonic() < deadline:
            if operator.poll() is not None:
                raise RuntimeError(f"the operator exited ({operator.returncode})")
            seen, submitted, final = watcher.counts()
            now = time.time()
            if t_submitted is None and submitted >= args.jobs:
                t_submitted = now
            if final >= args.jobs:
                t_done = now
                break
            if now - last >= 15:
                last = now
                op = usage(operator.pid)
                log(
                    f"t={now - t0:6.0f}s seen {seen} submitted {submitted} final {final} "
                    f"load {os.getloadavg()[0]:.2f} operator rss {op.rss_mb if op else '?'}MB"
                )
            time.sleep(0.2)
        if t_done is None:
            results["timed_out"] = True
        _, results["submitted_at_end"], results["final_at_end"] = watcher.counts()
        elapsed = (t_done or time.time()) - t0

        # The operator's jobs-by-phase gauge follows kopf's own watch: how long until it agrees
        # with the API server is how far kopf's event processing lags behind.
        settle_start = time.time()
        metrics = operator_metrics(metrics_port)
        key = 'dli_operator_batchjobs{phase="Succeeded"}'
        settle_limit = 0 if t_done is None else 120
        while metrics.get(key, 0) < args.jobs and time.time() - settle_start < settle_limit:
            time.sleep(1.0)
            metrics = operator_metrics(metrics_port)
        results["gauge_settled_after_seconds"] = (
            round(time.time() - settle_start, 1) if metrics.get(key, 0) >= args.jobs else None
        )
        results["operator_metrics_at_end"] = {
            k: v for k, v in operator_metrics(metrics_port).items() if "batchjobs{" in k
        }
        # Figures: after the run, before anything is stopped.
        calls = get_json(f"{emulator_url}/_emulator/calls")
        emulator_jobs = get_json(f"{emulator_url}/_emulator/jobs", timeout=600)["jobs"]
        api = client.CustomObjectsApi(client.ApiClient(cfg))
        items = api.list_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL)["items"]
        phases: dict[str, int] = {}
        for item in items:
            phase = (item.get("status") or {}).get("phase", "none")
            phases[phase] = phases.get(phase, 0) + 1
        with watcher.lock:
            seen_all = dict(watcher.seen)
            watch_events = watcher.events
        submit_latency = [
            s.submitted - s.created for s in seen_all.values() if s.submitted and s.created
        ]
        total_calls = sum(calls["calls"].values())
        results.update(
            {
                "jobs": args.jobs,
                "phases": phases,
                "seconds_to_all_submitted": round(t_submitted - t0, 1) if t_submitted else None,
                "seconds_to_all_final": round(elapsed, 1) if t_done else None,
                "submissions_per_minute": (
                    round(args.jobs / (t_submitted - t0) * 60, 0) if t_submitted else None
                ),
                "completions_per_minute": round(args.jobs / elapsed * 60, 0) if t_done else None,
                "submit_latency_seconds": percentiles(submit_latency),
                "dli_calls": calls["calls"],
                "dli_outcomes": calls["outcomes"],
                "dli_calls_total": total_calls,
                "dli_calls_per_job": round(total_calls / max(args.jobs, 1), 2),
                "audit": audit(emulator_jobs, items),
                "status_lag_seconds": status_lag(seen_all, emulator_jobs, args.sample),
                "timeline": timeline(seen_all, t0),
                "status_writes_per_job": percentiles(
                    [float(s.status_writes) for s in seen_all.values()]
                ),
                "watch_events": watch_events,
                "operator": vars(usage(operator.pid) or Usage(0, 0, 0)),
                "kube_apiserver": vars(usage(pids["kube-apiserver"]) or Usage(0, 0, 0)),
                "etcd": vars(usage(pids["etcd"]) or Usage(0, 0, 0)),
                "emulator": vars(usage(emulator.pid) or Usage(0, 0, 0)),
                "operator_metrics": operator_metrics(metrics_port),
            }
        )
        sampler.halt.set()
        loads = sampler.samples or [os.getloadavg()[0]]
        results["load_during"] = {
            "min": round(min(loads), 2),
            "mean": round(statistics.fmean(loads), 2),
            "max": round(max(loads), 2),
        }
        results["load_after"] = [round(x, 2) for x in os.getloadavg()]
        with contextlib.suppress(OSError):
            lines = sum(1 for _ in (workdir / "operator.log").open("rb"))
            results["operator_log_lines"] = lines
        return results
    finally:
        sampler.halt.set()
        if watcher is not None:
            watcher.halt.set()
        log("stopping the operator, the emulator and the control plane")
        stop(operator)
        stop(emulator)
        controlplane.stop(workdir / "cluster")
        if temp is not None:
            temp.cleanup()


def timeline(seen: dict[str, Seen], t0: float) -> dict[str, Any]:
    """Jobs submitted and final so far, every TIMELINE_BUCKET_SECONDS (for the plots)."""
    submitted = [s.submitted - t0 for s in seen.values() if s.submitted]
    final = [
        min(t for p, t in s.phases.items() if p in FINAL) - t0
        for s in seen.values()
        if FINAL & s.phases.keys()
    ]
    end = max([*submitted, *final, 0.0])
    edges = [i * TIMELINE_BUCKET_SECONDS for i in range(int(end // TIMELINE_BUCKET_SECONDS) + 2)]
    return {
        "bucket_seconds": TIMELINE_BUCKET_SECONDS,
        "submitted": [sum(1 for t in submitted if t <= edge) for edge in edges],
        "final": [sum(1 for t in final if t <= edge) for edge in edges],
    }


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def report(r: dict[str, Any]) -> str:
    m = r["machine"]
    lines = [
        "",
        f"command: {r['command']}",
        f"machine: {m['cpu']}, {m['cores']} cores, {m['ram_gb']} GB RAM, Linux {m['kernel']}",
        f"         Python {m['python']}, kopf {m['kopf']}, {m['kube-apiserver']}, {m['etcd']}",
        f"load average: before {r['load_before']}, during {r['load_during']}, "
        f"after {r['load_after']}",
        "",
        f"jobs                      {r['jobs']}  (phases: {r['phases']})",
        f"create                    {r['create']}",
        f"all submitted after       {r['seconds_to_all_submitted']} s",
        f"all finished after        {r['seconds_to_all_final']} s",
        f"submissions per minute    {r['submissions_per_minute']}",
        f"completions per minute    {r['completions_per_minute']}",
        f"submit latency (s)        {r['submit_latency_seconds']}",
        f"DLI calls                 {r['dli_calls']}  total {r['dli_calls_total']}, "
        f"{r['dli_calls_per_job']} per job",
        f"DLI outcomes              {r['dli_outcomes']}",
        f"audit                     {r['audit']}",
        f"status writes per job     {r['status_writes_per_job']}",
        "status lag (s) by state:",
        *(f"  {state:10} {lag}" for state, lag in r["status_lag_seconds"].items()),
        f"operator                  {r['operator']}  log lines {r.get('operator_log_lines')}",
        f"kube-apiserver            {r['kube_apiserver']}",
        f"etcd                      {r['etcd']}",
        f"emulator                  {r['emulator']}",
        f"watch events              {r['watch_events']}",
        f"phase gauge agreed after  {r['gauge_settled_after_seconds']} s "
        f"(at the end: {r['operator_metrics_at_end']})",
        "operator metrics:",
        *(f"  {k} {v:g}" for k, v in sorted(r["operator_metrics"].items())),
    ]
    if r.get("timed_out"):
        lines.insert(
            1,
            f"TIMED OUT: {r['submitted_at_end']} submitted, {r['final_at_end']} final "
            f"of {r['jobs']} after {r['settings']['timeout']} s",
        )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.plot:
        import plots  # the bench extra's matplotlib; the benchmark itself runs without it

        for path in plots.write_all(RESULTS):
            print(path.relative_to(ROOT))
        return 0
    with interruptible():
        try:
            results = run(args)
        except KeyboardInterrupt:
            log("interrupted; everything started was stopped")
            return 130
    print(report(results))
    if args.output:
        args.output.write_text(json.dumps(results, indent=2, sort_keys=True) + "\n")
        with contextlib.suppress(ImportError):  # matplotlib comes with the bench extra
            import plots

            plots.write_all(args.output.parent)
    ok = not results.get("timed_out") and not results["audit"]["duplicates"]
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
