"""The ``dli-operator`` command line: one entry point whose subcommands grow with the product."""

from __future__ import annotations

import logging
from pathlib import Path

import click

from dli_operator import __version__


@click.group()
@click.version_option(__version__, prog_name="dli-operator")
def main() -> None:
    """Run Huawei Cloud DLI Spark batch jobs as Kubernetes DliBatchJob resources."""


@main.group()
def cluster() -> None:
    """A local kube-apiserver + etcd for development and tests (no Docker needed)."""


@cluster.command("up")
@click.option("--workdir", type=click.Path(path_type=Path), default=Path(".local/cluster"))
@click.option("--kubeconfig", type=click.Path(path_type=Path), default=Path(".local/kubeconfig"))
def cluster_up(workdir: Path, kubeconfig: Path) -> None:
    """Start the control plane in the background and write a kubeconfig."""
    from dli_operator import controlplane

    controlplane.stop(workdir)
    plane = controlplane.start(workdir.resolve(), detached=True)
    kubeconfig.parent.mkdir(parents=True, exist_ok=True)
    kubeconfig.write_bytes(plane.kubeconfig.read_bytes())
    kubeconfig.chmod(0o600)
    click.echo(f"control plane ready at {plane.server}; kubeconfig: {kubeconfig}")


@cluster.command("down")
@click.option("--workdir", type=click.Path(path_type=Path), default=Path(".local/cluster"))
def cluster_down(workdir: Path) -> None:
    """Stop the control plane started by ``cluster up``."""
    from dli_operator import controlplane

    controlplane.stop(workdir)
    click.echo("control plane stopped")


@main.command("crd")
@click.argument(
    "kind", default="DliBatchJob", type=click.Choice(["DliBatchJob", "ScheduledDliBatchJob"])
)
def crd(kind: str) -> None:
    """Print a CRD generated from the models (crds/ holds this output)."""
    from dli_operator.resources import schedule_crd
    from dli_operator.resources.crd import render_crd

    if kind == schedule_crd.KIND:
        click.echo(render_crd(schedule_crd.build_crd(), schedule_crd.COMMAND), nl=False)
    else:
        click.echo(render_crd(), nl=False)


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", type=int, default=8099, show_default=True)
@click.option("--project-id", default="0123456789abcdef0123456789abcdef", show_default=True)
@click.option("--access-key", default="EMULATORAK", show_default=True)
@click.option("--secret-key", default="EMULATORSK", help="[default: EMULATORSK]")
@click.option("--queues", default="default,q1", show_default=True, help="Comma-separated.")
@click.option("--token", "tokens", multiple=True, help="An accepted X-Auth-Token (repeatable).")
@click.option("--start-seconds", type=float, default=1.0, show_default=True)
@click.option("--run-seconds", type=float, default=5.0, show_default=True)
@click.option("--state-file", type=click.Path(path_type=Path), help="Keep jobs across restarts.")
@click.option(
    "--backend",
    type=click.Choice(["scripted", "spark"]),
    default="scripted",
    show_default=True,
    help="scripted: the state machine; spark: run each batch on a local Spark (pyspark, Java 17+).",
)
@click.option(
    "--obs-root",
    type=click.Path(path_type=Path),
    default=Path(".local/obs"),
    show_default=True,
    help="spark: obs://bucket/key is OBS_ROOT/bucket/key.",
)
@click.option(
    "--packages-dir",
    type=click.Path(path_type=Path),
    default=Path(".local/packages"),
    show_default=True,
    help="spark: where DLI package names (no scheme) are.",
)
@click.option(
    "--spark-workdir",
    type=click.Path(path_type=Path),
    default=Path(".local/spark"),
    show_default=True,
    help="spark: one folder per batch (driver log, event log).",
)
@click.option(
    "--queue-slots",
    default="1",
    show_default=True,
    help="spark: jobs running at once per queue: N, or QUEUE=N,... (others wait).",
)
@click.option(
    "--max-cores",
    type=int,
    default=1,
    show_default=True,
    help="spark: most local[N] threads one job gets.",
)
@click.option(
    "--control-token",
    envvar="DLI_EMULATOR_CONTROL_TOKEN",
    help="Bearer token the /_emulator/ control API requires [env DLI_EMULATOR_CONTROL_TOKEN].",
)
def emulator(
    host: str,
    port: int,
    project_id: str,
    access_key: str,
    secret_key: str,
    queues: str,
    tokens: tuple[str, ...],
    start_seconds: float,
    run_seconds: float,
    state_file: Path | None,
    backend: str,
    obs_root: Path,
    packages_dir: Path,
    spark_workdir: Path,
    queue_slots: str,
    max_cores: int,
    control_token: str | None,
) -> None:
    """Serve a local stand-in for the DLI batch API (see docs/emulator.md)."""
    try:
        from dli_operator.emulator.__main__ import build_server, describe
    except ModuleNotFoundError as exc:
        # The operator image leaves the emulator's server out (pyproject.toml, extra `emulator`).
        raise click.ClickException(
            f"the emulator needs {exc.name}: pip install 'dli-operator[emulator]'"
        ) from exc
    from dli_operator.emulator.config import EmulatorConfig, SparkConfig, parse_slots
    from dli_operator.emulator.processes import SparkUnavailable, preflight

    spark = None
    if backend == "spark":
        try:
            preflight()
            slots, named = parse_slots(queue_slots)
        except (SparkUnavailable, ValueError) as error:
            raise click.ClickException(str(error)) from None
        spark = SparkConfig(obs_root, packages_dir, spark_workdir, slots, named, max_cores)

    config = EmulatorConfig(
        host=host,
        port=port,
        project_id=project_id,
        access_key=access_key,
        secret_key=secret_key,
        queues=tuple(q.strip() for q in queues.split(",") if q.strip()),
        tokens=frozenset(tokens),
        start_seconds=start_seconds,
        run_seconds=run_seconds,
        state_file=state_file,
        spark=spark,
        control_token=control_token or None,
    )
    click.echo(describe(config))
    build_server(config, log_level="info").run()


@main.command()
@click.option("-A", "--all-namespaces", "clusterwide", is_flag=True, help="Serve every namespace.")
@click.option("-n", "--namespace", "namespaces", multiple=True, help="Serve this namespace.")
@click.option(
    "--liveness",
    default="http://0.0.0.0:8080/healthz",
    show_default=True,
    help="Liveness endpoint URL; empty to disable.",
)
@click.option(
    "--standalone",
    is_flag=True,
    hidden=True,
    # Up to 0.2 kopf's active/standby mode ran unless told --standalone; replicas now share
    # the jobs by shard Leases (DLI_OPERATOR_SHARDING__*). Kept so that old commands still work.
    help="Accepted and ignored: kopf always runs standalone.",
)
def run(
    clusterwide: bool,
    namespaces: tuple[str, ...],
    liveness: str,
    standalone: bool,
) -> None:
    """Run the operator (kopf) for DliBatchJobs."""
    import kopf

    from dli_operator import handlers  # noqa: F401  (registers the handlers)
    from dli_operator.settings import get_settings

    get_settings()  # fail at start, naming the variable, not at the first job
    if not clusterwide and not namespaces:
        raise click.UsageError("give --all-namespaces or at least one --namespace")
    kopf.configure(log_format=kopf.LogFormat.PLAIN)
    # One line per DLI or Kubernetes request would bury what matters.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    kopf.run(
        clusterwide=clusterwide,
        namespaces=namespaces,
        liveness_endpoint=liveness or None,
        # kopf never pauses a replica: all are active, each on its shard's jobs (shards/).
        standalone=True,
        registry=kopf.get_default_registry(),
        # The served namespaces, for the engine's informer (handlers.py).
        memo=kopf.Memo(namespaces=namespaces),
    )
