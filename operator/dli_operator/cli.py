"""The ``dli-operator`` command line: one entry point whose subcommands grow with the product."""

from __future__ import annotations

from pathlib import Path

import click


@click.group()
@click.version_option(package_name="dli-operator")
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
