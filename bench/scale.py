"""Scale benchmark: N DliBatchJobs through a real kube-apiserver, the operator and the emulator.

Starts its own control plane (etcd + kube-apiserver), the DLI emulator and one operator process
(or ``--replicas N``), creates ``--jobs`` DliBatchJobs as fast as the API server takes them, and
measures how long the operator takes to submit them all and to see them all finish, how many DLI
calls it made (per operation and per job), whether any job was submitted twice, the status lag
(DLI state change to status), what the operator, kube-apiserver and etcd cost in memory and CPU,
and kube-apiserver's own request counts (``apiserver_request_total``: writes per job, 409s).

    .venv/bin/python bench/scale.py --jobs 1000
    .venv/bin/python bench/scale.py --jobs 10000 --rps 1000 --burst 1000
    .venv/bin/python bench/scale.py --seed-finished 100000 --jobs 1      # start to ready
    .venv/bin/python bench/scale.py --jobs 2000 --no-limit --replicas 1,2  # shard throughput
    .venv/bin/python bench/scale.py --jobs 300 --no-limit --replicas 3 --reshard-every 60

Every process it starts is stopped when it ends, also on Ctrl-C or SIGTERM. See
docs/benchmarks.md for what the figures mean and the recorded runs.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import apimetrics
from figures import audit, machine, operator_metrics, percentiles, status_lag, timeline
from procs import (
    ROOT,
    LoadSampler,
    Usage,
    controlplane,
    get_json,
    interruptible,
    log,
    spawn,
    stop,
    usage,
)
from replicas import Replicas, Resharder, StrandedSampler, describe_quota
from report import compare, describe_comparison, report
from seed import SEED_PREFIX, await_seeded, seed, seed_etcd
from watch import GROUP, LIVE_SELECTOR, PLURAL, VERSION, Watcher, create_all

PROJECT_ID = "0123456789abcdef0123456789abcdef"
CLI = str(Path(sys.executable).parent / "dli-operator")
CRD = ROOT / "crds" / "dlibatchjobs.dli.dev.yaml"
FINALIZER_POLICY = ROOT / "deploy" / "components" / "finalizer-policy" / "policy.yaml"
RESULTS = ROOT / "bench" / "results"
NAMESPACE = "bench"
NO_LIMIT_RPS, NO_LIMIT_BURST = 1_000_000.0, 1_000_000


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--jobs", type=int, default=1000, help="DliBatchJobs to create")
    p.add_argument("--threads", type=int, default=8, help="threads creating the objects")
    p.add_argument("--rps", type=float, default=10.0, help="DLI_OPERATOR_DLI__REQUESTS_PER_SECOND")
    p.add_argument("--burst", type=int, default=20, help="DLI_OPERATOR_DLI__BURST")
    p.add_argument(
        "--no-limit",
        action="store_true",
        help=f"no DLI limit to speak of (--rps {NO_LIMIT_RPS:g} --burst {NO_LIMIT_BURST})",
    )
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
    p.add_argument(
        "--seed-finished",
        type=int,
        default=0,
        metavar="N",
        help="before the operator starts, create N jobs whose status is already final "
        "(Succeeded); then measure start to ready, DLI calls for them and RSS",
    )
    p.add_argument("--seed-concurrency", type=int, default=32, help="seeding requests at once")
    p.add_argument(
        "--seed-via",
        choices=["api", "etcd"],
        default="api",
        help="seed through the API server, or straight into etcd (bench/seed.py; 100k in minutes)",
    )
    p.add_argument(
        "--replicas",
        type=_counts,
        default=[1],
        metavar="N[,N...]",
        help="operator processes, with DLI_OPERATOR_SHARDING__*; a list runs each in turn "
        "and prints the throughput ratio to the first",
    )
    p.add_argument(
        "--cpu-quota",
        choices=["taskset", "cfs", "none"],
        help="each replica's CPU budget: one core by taskset, a 1-core CFS quota, or none "
        "(default: taskset with --replicas, else none)",
    )
    p.add_argument(
        "--replica-cores",
        type=float,
        default=1.0,
        help="with --cpu-quota cfs: each replica's quota in cores (0.5: half a core each)",
    )
    p.add_argument(
        "--reshard-every",
        type=float,
        metavar="S",
        help="SIGKILL one replica every S s under load and start it again",
    )
    p.add_argument("--reshard-down", type=float, help="s a killed replica stays down (S/2)")
    p.add_argument(
        "--stranded-after",
        type=float,
        help="a job not final with no status change for longer is stranded (2 poll intervals)",
    )
    p.add_argument(
        "--no-finalizer-policy",
        dest="finalizer_policy",
        action="store_false",
        help="leave out deploy/components/finalizer-policy (the operator writes the finalizer)",
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
    args = p.parse_args(argv)
    if args.no_limit:
        args.rps, args.burst = NO_LIMIT_RPS, NO_LIMIT_BURST
    if args.cpu_quota is None:
        args.cpu_quota = "taskset" if max(args.replicas) > 1 or len(args.replicas) > 1 else "none"
    if args.reshard_every and args.reshard_down is None:
        args.reshard_down = args.reshard_every / 2
    if args.stranded_after is None:
        args.stranded_after = 2 * args.poll_interval
    return args


def _counts(text: str) -> list[int]:
    counts = [int(part) for part in text.split(",")]
    if not counts or min(counts) < 1:
        raise argparse.ArgumentTypeError("replica counts are positive integers")
    return counts


# --- the benchmark ----------------------------------------------------------------------------


@dataclass
class Stack:
    """What one run started, so that everything is stopped whatever happens."""

    workdir: Path
    emulator: subprocess.Popen[bytes] | None = None
    replicas: Replicas | None = None
    watcher: Watcher | None = None
    plane: controlplane.ControlPlane | None = None

    def stop(self) -> None:
        if self.watcher is not None:
            self.watcher.halt.set()
        log("stopping the operator, the emulator and the control plane")
        if self.replicas is not None:
            self.replicas.stop_all(stop)
        stop(self.emulator)
        controlplane.stop(self.workdir / "cluster")


def start_cluster(workdir: Path, bin_dir: Path, *, policy: bool) -> controlplane.ControlPlane:
    """A control plane with the CRD and, with ``policy``, the finalizer policy an install on
    Kubernetes 1.36 has (deploy/components/finalizer-policy: no finalizer write per job)."""
    log(f"control plane in {workdir / 'cluster'}")
    plane = controlplane.start(workdir / "cluster", bin_dir=bin_dir)
    kubectl = ["kubectl", "--kubeconfig", str(plane.kubeconfig)]
    manifests = [CRD, FINALIZER_POLICY] if policy else [CRD]
    subprocess.run(
        [*kubectl, "apply", "--server-side", *(f"--filename={m}" for m in manifests)], check=True
    )
    for attempt in range(5):  # "not found" right after the apply, on a busy machine
        wait = [*kubectl, "wait", "--for=condition=Established", "crd/dlibatchjobs.dli.dev"]
        if subprocess.run(wait).returncode == 0:
            break
        if attempt == 4:
            raise RuntimeError("the CRD never became Established")
        time.sleep(1.0)
    subprocess.run([*kubectl, "create", "namespace", NAMESPACE], check=True)
    if policy:
        await_admission(kubectl)
    return plane


def await_admission(kubectl: list[str], timeout: float = 60.0) -> None:
    """Wait until a create passes admission: a new MutatingAdmissionPolicy is compiled against
    the CRD a moment later, and until then creates are answered 503 (hack/dev.sh says more)."""
    probe = {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "DliBatchJob",
        "metadata": {"generateName": "probe-"},
        "spec": {"queue": "default", "file": "obs://bench/probe.py"},
    }
    command = [*kubectl, "create", "--dry-run=server", "-n", NAMESPACE, "-f", "-"]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        done = subprocess.run(command, input=json.dumps(probe).encode(), capture_output=True)
        if done.returncode == 0:
            return
        time.sleep(0.5)
    raise RuntimeError(f"creates still refused after {timeout:.0f}s: {done.stderr.decode()}")


def start_emulator(args: argparse.Namespace, workdir: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = controlplane.free_port()
    command = [CLI, "emulator", "--port", str(port)]
    command += ["--start-seconds", str(args.start_seconds), "--run-seconds", str(args.run_seconds)]
    proc = spawn(command, workdir / "emulator.log")
    controlplane.wait_for_port(port)
    return proc, f"http://127.0.0.1:{port}"


def operator_env(
    args: argparse.Namespace, plane: controlplane.ControlPlane, emulator_url: str
) -> dict[str, str]:
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
        DLI_OPERATOR_POLICY__DEFAULT_CREDENTIALS_NAMESPACES=NAMESPACE,
    )
    return env


def start_operators(stack: Stack, count: int) -> float:
    """Start the replicas; return when they were started (epoch s), their ports open."""
    assert stack.replicas is not None
    started = time.time()
    stack.replicas.start_all()
    for replica in stack.replicas.replicas:
        controlplane.wait_for_port(replica.metrics_port, timeout=600)
    pids = [r.proc.pid for r in stack.replicas.replicas if r.proc]
    log(
        f"{count} operator process(es) {pids}: "
        f"metrics ports open after {time.time() - started:.1f}s"
    )
    return started


@dataclass
class Progress:
    t_submitted: float | None = None
    t_done: float | None = None
    t_first_submission: float | None = None


def wait_final(args: argparse.Namespace, stack: Stack, t0: float, deadline: float) -> Progress:
    """Until every live job is final (or the deadline): log every 15 s, note the milestones."""
    assert stack.watcher is not None
    assert stack.replicas is not None
    progress, last = Progress(), 0.0
    while time.monotonic() < deadline:
        stack.replicas.check()
        seen, submitted, final = stack.watcher.counts()
        now = time.time()
        if progress.t_first_submission is None and submitted:
            progress.t_first_submission = now
        if progress.t_submitted is None and submitted >= args.jobs:
            progress.t_submitted = now
        if final >= args.jobs:
            progress.t_done = now
            break
        if now - last >= 15:
            last = now
            stack.replicas.sample_usage()
            rss = [u.rss_mb for pid in stack.replicas.live_pids() if (u := usage(pid))]
            log(
                f"t={now - t0:6.0f}s seen {seen} submitted {submitted} final {final} "
                f"load {os.getloadavg()[0]:.2f} operator rss {rss}MB"
            )
        time.sleep(0.2)
    return progress


def settle_gauge(args: argparse.Namespace, port: int, done: bool) -> float | None:
    """How long until the operator's jobs-by-phase gauge agrees with the API server.

    The gauge follows kopf's own watch: the time it takes is how far kopf's event processing
    lags behind. Meaningful for one replica only (a shard counts its own jobs)."""
    start = time.time()
    key = 'dli_operator_batchjobs{phase="Succeeded"}'
    expected = args.jobs + args.seed_finished
    metrics = operator_metrics(port)
    limit = 120 if done else 0
    while metrics.get(key, 0) < expected and time.time() - start < limit:
        time.sleep(1.0)
        metrics = operator_metrics(port)
    return round(time.time() - start, 1) if metrics.get(key, 0) >= expected else None


def dli_calls_idle(emulator_url: str, seconds: float) -> dict[str, Any]:
    """DLI calls made while every job is final, over ``seconds`` (must be none)."""
    before = get_json(f"{emulator_url}/_emulator/calls")["calls"]
    time.sleep(seconds)
    after = get_json(f"{emulator_url}/_emulator/calls")["calls"]
    calls = {op: n - before.get(op, 0) for op, n in after.items() if n - before.get(op, 0)}
    return {"seconds": seconds, "calls": calls, "total": sum(calls.values())}


def seeded_dli_figures(
    calls: dict[str, Any], emulator_jobs: list[dict[str, Any]]
) -> dict[str, Any]:
    """DLI calls about the seeded jobs: their batch ids are unknown to the emulator (404), and
    any batch created for one carries its name."""
    not_found = sum(counts.get("404", 0) for counts in calls["outcomes"].values())
    created = sum(1 for j in emulator_jobs if (j.get("name") or "").startswith(SEED_PREFIX))
    return {"calls_answered_404": not_found, "batches_created": created}


def run(args: argparse.Namespace, count: int) -> dict[str, Any]:
    """One benchmark with ``count`` operator replicas; everything started is stopped after."""
    temp = None
    if args.workdir:
        workdir = (args.workdir / f"replicas-{count}").resolve()
        workdir.mkdir(parents=True, exist_ok=True)
    else:
        temp = tempfile.TemporaryDirectory(prefix="dli-bench-")
        workdir = Path(temp.name)
    bin_dir = controlplane.find_binaries()
    results: dict[str, Any] = {"command": shlex.join([sys.executable, *sys.argv])}
    results["settings"] = {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()}
    results["replicas"] = count
    results["cpu_quota"] = describe_quota(args.cpu_quota, count, args.replica_cores)
    results["machine"] = machine(bin_dir)
    results["load_before"] = [round(x, 2) for x in os.getloadavg()]
    stack = Stack(workdir)
    sampler = LoadSampler()
    try:
        measure(args, count, stack, sampler, results)
        return results
    finally:
        sampler.halt.set()
        stack.stop()
        if temp is not None:
            temp.cleanup()


def measure(
    args: argparse.Namespace,
    count: int,
    stack: Stack,
    sampler: LoadSampler,
    results: dict[str, Any],
) -> None:
    from kubernetes import client, config

    stack.plane = plane = start_cluster(
        stack.workdir, controlplane.find_binaries(), policy=args.finalizer_policy
    )
    pids = json.loads(plane.pidfile.read_text())
    stack.emulator, emulator_url = start_emulator(args, stack.workdir)
    scraper = apimetrics.ApiServerMetrics(plane.server, plane.workdir / "pki")
    if args.seed_finished:
        log(f"seeding {args.seed_finished} finished DliBatchJobs")
        if args.seed_via == "etcd":
            results["seed"] = seed_etcd(
                f"http://127.0.0.1:{controlplane.etcd_port(plane.workdir)}",
                NAMESPACE,
                args.seed_finished,
                endpoint=emulator_url,
                project_id=PROJECT_ID,
            )
            await_seeded(plane.server, plane.workdir / "pki", NAMESPACE, args.seed_finished)
        else:
            results["seed"] = seed(
                plane.server,
                plane.workdir / "pki",
                NAMESPACE,
                args.seed_finished,
                endpoint=emulator_url,
                project_id=PROJECT_ID,
                concurrency=args.seed_concurrency,
            )
        log(f"seeded: {results['seed']}")
    operator_args = [CLI, "run", "--namespace", NAMESPACE, "--standalone", "--liveness", ""]
    stack.replicas = Replicas(
        count,
        operator_args,
        operator_env(args, plane, emulator_url),
        workdir=stack.workdir,
        namespace=NAMESPACE,
        quota=args.cpu_quota,
        spawn=spawn,
        cores_each=args.replica_cores,
        free_port=controlplane.free_port,
    )
    log(f"CPU: {results['cpu_quota']}")
    cfg = client.Configuration()
    config.load_kube_config(str(plane.kubeconfig), client_configuration=cfg)
    stack.watcher = watcher = Watcher(client.ApiClient(cfg), NAMESPACE)
    watcher.start()
    sampler.start()
    stranded = StrandedSampler(watcher, args.stranded_after)
    names = [f"bench-{i:05d}" for i in range(args.jobs)]

    api_before = scraper.scrape()
    t_started = None
    if not args.create_first:
        t_started = start_operators(stack, count)
        log(f"creating {args.jobs} DliBatchJobs")
    t0, t_created, create_errors = create_all(
        plane.kubeconfig, NAMESPACE, names, args.threads, watcher
    )
    results["create"] = {
        "seconds": round(t_created - t0, 2),
        "per_second": round(args.jobs / max(t_created - t0, 1e-9), 1),
        "errors": create_errors,
        "operator_running": t_started is not None,
    }
    log(f"created {args.jobs} in {t_created - t0:.1f}s ({create_errors} errors)")
    if t_started is None:
        t0 = t_started = start_operators(stack, count)  # the clock starts with the operator
        log(f"operator started on a backlog of {args.jobs}")
    resharder = None
    if args.reshard_every:
        resharder = Resharder(stack.replicas, args.reshard_every, args.reshard_down)
        resharder.start()
    stranded.start()
    progress = wait_final(args, stack, t0, time.monotonic() + args.timeout)
    stranded.halt.set()
    if resharder is not None:
        resharder.halt.set()
        resharder.join()
        restart_killed(stack)
    collect(args, stack, results, progress, t0, t_started, emulator_url, pids)
    results["stranded"] = stranded.result()
    results["reshards"] = resharder.events if resharder else []
    results["apiserver"] = apimetrics.summarize(
        apimetrics.delta(api_before, scraper.scrape()),
        args.jobs,  # live jobs; writes to seeded ones add to it
    )
    if args.seed_finished:
        results["dli_calls_idle"] = dli_calls_idle(emulator_url, 2 * args.poll_interval)
    sampler.halt.set()
    loads = sampler.samples or [os.getloadavg()[0]]
    results["load_during"] = {
        "min": round(min(loads), 2),
        "mean": round(statistics.fmean(loads), 2),
        "max": round(max(loads), 2),
    }
    results["load_after"] = [round(x, 2) for x in os.getloadavg()]


def restart_killed(stack: Stack) -> None:
    """After the resharding, every replica up again (for the figures read from them)."""
    assert stack.replicas is not None
    for replica in stack.replicas.replicas:
        if replica.proc is None or replica.proc.poll() is not None:
            stack.replicas.start(replica)
            controlplane.wait_for_port(replica.metrics_port, timeout=600)


def collect(
    args: argparse.Namespace,
    stack: Stack,
    results: dict[str, Any],
    progress: Progress,
    t0: float,
    t_started: float,
    emulator_url: str,
    pids: dict[str, int],
) -> None:
    """The figures: after the run, before anything is stopped."""
    from kubernetes import client, config

    assert stack.watcher is not None
    assert stack.replicas is not None
    assert stack.plane is not None
    watcher, replicas = stack.watcher, stack.replicas
    if progress.t_done is None:
        results["timed_out"] = True
    _, results["submitted_at_end"], results["final_at_end"] = watcher.counts()
    elapsed = (progress.t_done or time.time()) - t0
    port = replicas.replicas[0].metrics_port
    results["gauge_settled_after_seconds"] = (
        settle_gauge(args, port, progress.t_done is not None)
        if len(replicas.replicas) == 1
        else None
    )
    results["operator_metrics_at_end"] = {
        k: v for k, v in operator_metrics(port).items() if "batchjobs{" in k
    }
    calls = get_json(f"{emulator_url}/_emulator/calls")
    emulator_jobs = get_json(f"{emulator_url}/_emulator/jobs", timeout=600)["jobs"]
    cfg = client.Configuration()
    config.load_kube_config(str(stack.plane.kubeconfig), client_configuration=cfg)
    api = client.CustomObjectsApi(client.ApiClient(cfg))
    items = api.list_namespaced_custom_object(
        GROUP, VERSION, NAMESPACE, PLURAL, label_selector=LIVE_SELECTOR
    )["items"]
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
    operators = replicas.usage()
    first = progress.t_first_submission
    live_emulator_jobs = [
        j for j in emulator_jobs if not (j.get("name") or "").startswith(SEED_PREFIX)
    ]
    results.update(
        {
            "jobs": args.jobs,
            "phases": phases,
            "start_to_first_submission_seconds": round(first - t_started, 1) if first else None,
            "seconds_to_all_submitted": _since(progress.t_submitted, t0),
            "seconds_to_all_final": round(elapsed, 1) if progress.t_done else None,
            "submissions_per_minute": (
                round(args.jobs / (progress.t_submitted - t0) * 60, 0)
                if progress.t_submitted
                else None
            ),
            "completions_per_minute": (
                round(args.jobs / elapsed * 60, 0) if progress.t_done else None
            ),
            "submit_latency_seconds": percentiles(submit_latency),
            "dli_calls": calls["calls"],
            "dli_outcomes": calls["outcomes"],
            "dli_calls_total": total_calls,
            "dli_calls_per_job": round(total_calls / max(args.jobs, 1), 2),
            "audit": audit(live_emulator_jobs, items),
            "status_lag_seconds": status_lag(seen_all, emulator_jobs, args.sample),
            "timeline": timeline(seen_all, t0),
            "status_writes_per_job": percentiles(
                [float(s.status_writes) for s in seen_all.values()]
            ),
            "watch_events": watch_events,
            "operator": operators[0] if len(operators) == 1 else _total(operators),
            "operators": operators,
            "kube_apiserver": vars(usage(pids["kube-apiserver"]) or Usage(0, 0, 0)),
            "etcd": vars(usage(pids["etcd"]) or Usage(0, 0, 0)),
            "emulator": vars(usage(stack.emulator.pid) if stack.emulator else Usage(0, 0, 0)),
            "operator_metrics": operator_metrics(port),
        }
    )
    if args.seed_finished:
        results["seeded_dli"] = seeded_dli_figures(calls, emulator_jobs)
    with contextlib.suppress(OSError):
        results["operator_log_lines"] = sum(
            sum(1 for _ in r.log.open("rb")) for r in replicas.replicas
        )


def _since(t: float | None, t0: float) -> float | None:
    return round(t - t0, 1) if t else None


def _total(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """The replicas together: summed RSS and CPU, the largest peak."""

    def add(key: str) -> float:
        return round(sum(r.get(key) or 0.0 for r in rows), 1)

    peak = max((r.get("peak_rss_mb") or 0.0) for r in rows)
    return {"peak_rss_mb": peak, "rss_mb": add("rss_mb"), "cpu_seconds": add("cpu_seconds")}


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.plot:
        import plots  # the bench extra's matplotlib; the benchmark itself runs without it

        for path in plots.write_all(RESULTS):
            print(path.relative_to(ROOT))
        return 0
    runs: list[dict[str, Any]] = []
    with interruptible():
        try:
            for count in args.replicas:
                runs.append(run(args, count))
                print(report(runs[-1]), flush=True)
        except KeyboardInterrupt:
            log("interrupted; everything started was stopped")
            return 130
    if len(runs) > 1:
        runs[-1]["comparison"] = compare(runs)
        print(describe_comparison(runs[-1]["comparison"]))
    if args.output:
        write_outputs(args.output, runs)
    ok = all(not r.get("timed_out") and not r["audit"]["duplicates"] for r in runs)
    return 0 if ok else 1


def write_outputs(output: Path, runs: list[dict[str, Any]]) -> None:
    """One JSON per run: ``output`` itself, or ``<stem>-replicas<N>.json`` for a list."""
    for r in runs:
        path = output
        if len(runs) > 1:
            path = output.with_name(f"{output.stem}-replicas{r['replicas']}{output.suffix}")
        path.write_text(json.dumps(r, indent=2, sort_keys=True) + "\n")
    with contextlib.suppress(ImportError):  # matplotlib comes with the bench extra
        import plots

        plots.write_all(output.parent)


if __name__ == "__main__":
    sys.exit(main())
