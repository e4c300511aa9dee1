"""The ``kubectl-dli`` command line (click). Each command is one async function over a Session.

Errors a user can act on (unknown job, no batch yet, no credentials, a DLI error with its code,
a Kubernetes refusal) end the command with ``error: ...`` and exit status 1, never a traceback.
"""

from __future__ import annotations

import asyncio
import copy
import os
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import click

from dli_operator.dli.errors import DliApiError, DliError
from dli_operator.kubeapi import KubeApiError
from dli_operator.kubectl import configure as configuring
from dli_operator.kubectl import describe as describing
from dli_operator.kubectl.access import (
    ENV_ACCESS_KEY,
    ENV_ALLOW_INSECURE,
    ENV_ENDPOINT,
    ENV_PROJECT_ID,
    ENV_REGION,
    ENV_SECRET_KEY,
    Flags,
    PluginError,
    Session,
)
from dli_operator.kubectl.logs import LogRequest, show_logs

# Not copied on a rerun: what the operator, kopf or kubectl stored, and GitOps ownership. A rerun
# is not in Git: with Argo CD's tracking label or annotation, Argo CD counts it as part of the
# application and prunes it; Flux's and Helm's marks would claim an object they never applied.
NOT_COPIED_PREFIXES = (
    "dli.dev/",
    "kopf.zalando.org/",
    "kubectl.kubernetes.io/",
    "argocd.argoproj.io/",
    "kustomize.toolkit.fluxcd.io/",
    "helm.toolkit.fluxcd.io/",
    "meta.helm.sh/",
)
NOT_COPIED = frozenset({"app.kubernetes.io/instance", "app.kubernetes.io/managed-by"})
RERUN_OF = "dli.dev/rerun-of"

namespace_option = click.option(
    "-n", "--namespace", default=None, help="Namespace of the job [default: the context's]."
)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="dli-operator")
def main() -> None:
    """kubectl dli: DliBatchJob logs, details, reruns, suspension and saved DLI settings."""


@main.command()
@click.argument("job")
@namespace_option
@click.option("--attempt", type=click.IntRange(min=1), help="Attempt number [default: latest].")
@click.option("--tail", type=click.IntRange(min=0), help="Only the last N lines.")
@click.option("-f", "--follow", is_flag=True, help="Keep printing until the job is final.")
@click.option(
    "--interval",
    type=click.FloatRange(min=0.1),
    default=2.0,
    show_default=True,
    help="Seconds between polls with -f.",
)
@click.option("--endpoint", help=f"Your DLI endpoint [default: ${ENV_ENDPOINT}, else saved].")
@click.option("--region", help=f"Your DLI region [default: ${ENV_REGION}, else saved].")
@click.option("--project-id", help=f"Your DLI project [default: ${ENV_PROJECT_ID}, else saved].")
@click.option(
    "--allow-insecure-endpoint/--no-allow-insecure-endpoint",
    default=None,
    help=f"Allow plain http (the emulator) [default: ${ENV_ALLOW_INSECURE}, else saved].",
)
def logs(
    job: str,
    namespace: str | None,
    attempt: int | None,
    tail: int | None,
    follow: bool,
    interval: float,
    endpoint: str | None,
    region: str | None,
    project_id: str | None,
    allow_insecure_endpoint: bool | None,
) -> None:
    """Print the Spark driver log of JOB's attempt, as DLI keeps it.

    Your own DLI settings (used when the job has no readable Secret) come from these options,
    else the environment, else what kubectl dli configure saved for the current context.
    """
    flags = Flags(endpoint, region, project_id, allow_insecure_endpoint)

    async def run(session: Session) -> None:
        ns = _ns(session, namespace)
        request = LogRequest(ns, job, attempt, tail, follow, interval, flags)
        await show_logs(session, request, click.echo)

    _run(run)


@main.command("describe")
@click.argument("job")
@namespace_option
def describe_job(job: str, namespace: str | None) -> None:
    """Show JOB's status, attempts, conditions and recent Events."""

    async def run(session: Session) -> None:
        parsed, body = await session.job(_ns(session, namespace), job)
        events = await session.kube.list_events(_ns(session, namespace), body["metadata"]["uid"])
        click.echo(describing.render(parsed, events, datetime.now(UTC)))

    _run(run)


@main.command()
@click.argument("job")
@namespace_option
@click.option("--name", "new_name", help="Name of the new job [default: generated from JOB].")
def rerun(job: str, namespace: str | None, new_name: str | None) -> None:
    """Run JOB again as a new DliBatchJob with the same spec; print its name."""

    async def run(session: Session) -> None:
        ns = _ns(session, namespace)
        _, body = await session.job(ns, job)
        created = await session.kube.create_job(ns, rerun_body(body, new_name))
        if created is None:
            raise PluginError(f"a DliBatchJob named {new_name} exists already in {ns}")
        click.echo(created["metadata"]["name"])

    _run(run)


@main.command()
@click.argument("job")
@namespace_option
def suspend(job: str, namespace: str | None) -> None:
    """Cancel JOB's running attempt and hold it (spec.suspend: true)."""
    _run(lambda session: _set_suspend(session, _ns(session, namespace), job, True))


@main.command()
@click.argument("job")
@namespace_option
def resume(job: str, namespace: str | None) -> None:
    """Let a suspended JOB run again (spec.suspend: false): a new attempt is submitted."""
    _run(lambda session: _set_suspend(session, _ns(session, namespace), job, False))


@main.command()
@click.option("--endpoint", help="Your DLI endpoint URL (https; http needs the next option).")
@click.option("--allow-insecure-endpoint", is_flag=True, help="Allow a plain-http endpoint.")
@click.option("--region", help="Your DLI region, for jobs that name no place.")
@click.option("--project-id", help="Your DLI project id, for jobs that name none.")
@click.option(
    "--credentials-from-env",
    is_flag=True,
    help=f"Save your keys from ${ENV_ACCESS_KEY} and ${ENV_SECRET_KEY} (never from arguments).",
)
@click.option("--show", is_flag=True, help="Print what is saved (keys hidden), change nothing.")
@click.option("--forget", is_flag=True, help="Remove what is saved for the context.")
def configure(
    endpoint: str | None,
    allow_insecure_endpoint: bool,
    region: str | None,
    project_id: str | None,
    credentials_from_env: bool,
    show: bool,
    forget: bool,
) -> None:
    """Save your DLI settings for the current kubeconfig context (0600, under ~/.config).

    logs uses them when neither an option nor the environment gives a setting. The entry
    replaces the context's old one, and applies only while the context names the same server.
    """
    request = configuring.Request(
        endpoint, region, project_id, allow_insecure_endpoint, credentials_from_env, show, forget
    )
    try:
        click.echo(configuring.configure(request, os.environ))
    except PluginError as exc:
        raise click.ClickException(str(exc)) from exc


def rerun_body(body: dict[str, Any], new_name: str | None) -> dict[str, Any]:
    """A new DliBatchJob with ``body``'s spec (not suspended), labels and user annotations."""
    meta = body["metadata"]
    new_meta: dict[str, Any] = {
        "labels": _copied(meta.get("labels")),
        "annotations": _copied(meta.get("annotations")) | {RERUN_OF: meta["name"]},
    }
    new_meta |= {"name": new_name} if new_name else {"generateName": f"{meta['name']}-"}
    spec = copy.deepcopy(body["spec"])
    spec.pop("suspend", None)
    return {
        "apiVersion": body["apiVersion"],
        "kind": body["kind"],
        "metadata": new_meta,
        "spec": spec,
    }


def _copied(pairs: dict[str, str] | None) -> dict[str, str]:
    return {
        k: v
        for k, v in (pairs or {}).items()
        if k not in NOT_COPIED and not k.startswith(NOT_COPIED_PREFIXES)
    }


async def _set_suspend(session: Session, namespace: str, name: str, value: bool) -> None:
    job, _ = await session.job(namespace, name)
    if job.status.phase is not None and job.status.phase.is_final:
        raise PluginError(
            f"dlibatchjob {namespace}/{name} is already {job.status.phase.value}; "
            "use kubectl dli rerun to run it again"
        )
    await session.kube.patch_job(namespace, name, {"spec": {"suspend": value}})
    click.echo(f"dlibatchjob.dli.dev/{name} {'suspended' if value else 'resumed'}")


def _ns(session: Session, namespace: str | None) -> str:
    return namespace or session.default_namespace


def _run(command: Callable[[Session], Awaitable[None]]) -> None:
    """Run one command on a session (the test's, or one from the kubeconfig); errors as text."""
    context = click.get_current_context()
    try:
        session = (
            context.obj if isinstance(context.obj, Session) else Session.from_kubeconfig(os.environ)
        )
        asyncio.run(_closing(session, command))
    except PluginError as exc:
        raise click.ClickException(str(exc)) from exc
    except DliApiError as exc:
        raise click.ClickException(
            f"DLI refused: {exc.error_code or exc.status}: {exc.error_msg or exc.message}"
        ) from exc
    except DliError as exc:
        raise click.ClickException(f"DLI call failed: {exc.message}") from exc
    except KubeApiError as exc:
        raise click.ClickException(f"Kubernetes: {exc}") from exc


async def _closing(session: Session, command: Callable[[Session], Awaitable[None]]) -> None:
    try:
        await command(session)
    finally:
        if not isinstance(click.get_current_context().obj, Session):
            await session.kube.aclose()
