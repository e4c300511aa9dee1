"""How ``kubectl dli`` reaches the cluster and DLI, as the user who runs it.

Kubernetes: the user's kubeconfig (``KUBECONFIG`` or ``~/.kube/config``, current context), read
by kopf's own kubeconfig login, so the plugin needs no Kubernetes client library.

DLI, for one job (docs/observability.md):
- where the batch lives: ``status.target`` (the endpoint and project the operator recorded with
  the current attempt), else ``spec.endpoint`` / ``spec.region`` and ``spec.projectId``;
- whose keys: the job's ``spec.credentialsSecretRef`` Secret if the user may read it; else the
  user's own;
- the user's own settings, each from the first of: a flag of the command (``--endpoint``,
  ``--region``, ``--project-id``, ``--allow-insecure-endpoint``), the environment
  (``KUBECTL_DLI_ENDPOINT``, ``HUAWEICLOUD_SDK_REGION``, ``HUAWEICLOUD_SDK_PROJECT_ID``,
  ``KUBECTL_DLI_ALLOW_INSECURE_ENDPOINT``; keys ``HUAWEICLOUD_SDK_AK`` / ``HUAWEICLOUD_SDK_SK`` /
  ``HUAWEICLOUD_SDK_SECURITY_TOKEN``, the variables the Huawei Cloud SDKs read), and what
  ``kubectl dli configure`` saved for the current context (``config.py``; ``make dev`` saves the
  demo's).

The user's own keys go only to an endpoint the user named (flag, variable or saved setting) or to
a region's official endpoint: never to one a job carries, in its spec or in its status. Both are
written by someone other than the user: the spec by the job's author, the status by whoever may
write ``dlibatchjobs/status`` (the operator, but also anyone an admin granted ``*`` on the
group), so neither may decide where the user's access key and security token are sent.
"""

from __future__ import annotations

import asyncio
import os
import re
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import kopf
import yaml
from pydantic import ValidationError

from dli_operator.dli.auth import AkSkAuth, Credentials
from dli_operator.dli.client import DliClient, checked_endpoint, endpoint_for_region
from dli_operator.kubeapi import CREDENTIALS_TYPE, KubeApi, KubeApiError
from dli_operator.kubectl import config
from dli_operator.resources.batchjob import DliBatchJob

ENV_ACCESS_KEY = "HUAWEICLOUD_SDK_AK"
ENV_SECRET_KEY = "HUAWEICLOUD_SDK_SK"
ENV_SECURITY_TOKEN = "HUAWEICLOUD_SDK_SECURITY_TOKEN"
ENV_PROJECT_ID = "HUAWEICLOUD_SDK_PROJECT_ID"
ENV_REGION = "HUAWEICLOUD_SDK_REGION"
ENV_ENDPOINT = "KUBECTL_DLI_ENDPOINT"
ENV_ALLOW_INSECURE = "KUBECTL_DLI_ALLOW_INSECURE_ENDPOINT"
CONFIGURE_HINT = "or save them for this context with kubectl dli configure"

# A region's official DLI endpoint, as endpoint_for_region writes it: nothing else (no port, no
# user info, no path) fits, and the region found must give back the same URL.
OFFICIAL_ENDPOINT = re.compile(r"https://dli\.([a-z0-9-]+)\.myhuaweicloud\.(?:com|eu)")
TRUE_WORDS = ("1", "true", "yes")


class PluginError(Exception):
    """Something the user can fix, said in one sentence (printed as ``error: ...``)."""


@dataclass(frozen=True)
class Flags:
    """The user's DLI settings given on the command line; None: not given."""

    endpoint: str | None = None
    region: str | None = None
    project_id: str | None = None
    allow_insecure: bool | None = None


@dataclass(frozen=True)
class UserSettings:
    """The user's own DLI settings, each from the first of: flag, environment, saved context."""

    endpoint: str | None = None
    region: str | None = None
    project_id: str | None = None
    allow_insecure: bool = False
    credentials: Credentials | None = field(default=None, repr=False)

    def own_endpoint(self) -> str | None:
        """Where the user sends DLI calls when the job names no place: endpoint, else region's."""
        return self.endpoint or (endpoint_for_region(self.region) if self.region else None)

    def trusts(self, endpoint: str) -> bool:
        """May the user's own keys go to ``endpoint``: theirs, or a region's official one."""
        endpoint = endpoint.rstrip("/")
        if self.endpoint and endpoint == self.endpoint.rstrip("/"):
            return True
        official = OFFICIAL_ENDPOINT.fullmatch(endpoint)
        return official is not None and endpoint_for_region(official.group(1)) == endpoint


def resolve(
    flags: Flags, env: Mapping[str, str], saved: config.ContextSettings | None
) -> UserSettings:
    """Flags over the environment over the settings saved for the context, field by field."""
    insecure_env = env.get(ENV_ALLOW_INSECURE)
    allow_insecure = (
        flags.allow_insecure
        if flags.allow_insecure is not None
        else (
            insecure_env.lower() in TRUE_WORDS
            if insecure_env is not None
            else bool(saved and saved.allow_insecure_endpoint)
        )
    )
    access_key, secret_key = env.get(ENV_ACCESS_KEY), env.get(ENV_SECRET_KEY)
    credentials = (
        Credentials(access_key, secret_key, env.get(ENV_SECURITY_TOKEN) or None)
        if access_key and secret_key
        else (saved.credentials if saved else None)
    )
    return UserSettings(
        endpoint=flags.endpoint or env.get(ENV_ENDPOINT) or (saved.endpoint if saved else None),
        region=flags.region or env.get(ENV_REGION) or (saved.region if saved else None),
        project_id=(
            flags.project_id or env.get(ENV_PROJECT_ID) or (saved.project_id if saved else None)
        ),
        allow_insecure=allow_insecure,
        credentials=credentials,
    )


def current_context(env: Mapping[str, str]) -> str | None:
    """The kubeconfig's current context, as kubectl finds it (the first file that sets one)."""
    home = env.get("HOME") or str(Path.home())
    default = Path(home) / ".kube" / "config"
    paths = env.get("KUBECONFIG") or (str(default) if default.exists() else "")
    for path in filter(None, (p.strip() for p in paths.split(os.pathsep))):
        try:
            document = yaml.safe_load(Path(path).expanduser().read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, yaml.YAMLError):
            return None  # kopf's login, which reads the same files, says what is wrong
        if isinstance(document, dict) and document.get("current-context"):
            return str(document["current-context"])
    return None


def kube_login() -> kopf.ConnectionInfo:
    """The current context's connection, read the way kopf reads it."""
    try:
        info = kopf.login_with_kubeconfig(settings=kopf.OperatorSettings())
    except (OSError, KeyError, kopf.LoginError) as exc:
        raise PluginError(f"cannot read the kubeconfig: {exc!r}") from exc
    if info is None:
        raise PluginError("no kubeconfig: set KUBECONFIG or create ~/.kube/config")
    return info


def load_saved(env: Mapping[str, str], server: str) -> config.ContextSettings | None:
    """What ``kubectl dli configure`` saved for the current context on ``server``."""
    context = current_context(env)
    if context is None:
        return None
    try:
        return config.load(config.config_path(env), context, server)
    except config.ConfigError as exc:
        raise PluginError(str(exc)) from exc


@dataclass
class Session:
    """The cluster connection and the environment one ``kubectl dli`` command runs with."""

    kube: KubeApi
    env: Mapping[str, str]
    default_namespace: str = "default"
    transport: httpx.AsyncBaseTransport | None = None
    """For tests: where DLI requests go instead of the network."""
    sleep: Callable[[float], Awaitable[None]] = field(default=asyncio.sleep)
    saved: config.ContextSettings | None = None
    """What ``kubectl dli configure`` saved for the current context and its server."""

    @classmethod
    def from_kubeconfig(cls, env: Mapping[str, str]) -> Session:
        info = kube_login()
        saved = load_saved(env, info.server or "")
        kube = KubeApi.from_connection(info)
        return cls(kube, env, info.default_namespace or "default", saved=saved)

    async def job(self, namespace: str, name: str) -> tuple[DliBatchJob, dict[str, Any]]:
        """The job, parsed and as stored; PluginError if there is none."""
        body = await self.kube.get_object("dlibatchjobs", namespace, name)
        if body is None:
            raise PluginError(f'dlibatchjob "{name}" not found in namespace "{namespace}"')
        try:
            return DliBatchJob.from_body(body), body
        except ValidationError as exc:
            raise PluginError(f"dlibatchjob {namespace}/{name} does not parse: {exc}") from exc

    async def dli_for(self, job: DliBatchJob, flags: Flags | None = None) -> DliClient:
        """A DLI client for this job's project and endpoint, signed with the resolved keys."""
        user = resolve(flags or Flags(), self.env, self.saved)
        namespace = job.metadata.namespace or self.default_namespace
        credentials, yours = await self._credentials(namespace, job, user)
        where = job_endpoint(job)
        if yours and where and not user.trusts(where):
            raise _foreign_endpoint(where)
        endpoint = where or user.own_endpoint()
        if not endpoint:
            raise PluginError(
                f"no DLI endpoint: the job names no region or endpoint; pass --endpoint or "
                f"--region, set {ENV_ENDPOINT} or {ENV_REGION}, {CONFIGURE_HINT}"
            )
        project = job_project(job) or user.project_id
        if not project:
            raise PluginError(
                f"no DLI project id: the job has no spec.projectId; pass --project-id, set "
                f"{ENV_PROJECT_ID}, {CONFIGURE_HINT}"
            )
        try:
            endpoint = checked_endpoint(endpoint, allow_insecure=user.allow_insecure)
        except ValueError as exc:
            raise PluginError(
                f"{exc}; pass --allow-insecure-endpoint or set {ENV_ALLOW_INSECURE}=true to "
                "allow it"
            ) from exc
        return DliClient(
            project_id=project,
            endpoint=endpoint,
            auth=AkSkAuth(credentials),
            allow_insecure=user.allow_insecure,
            transport=self.transport,
        )

    async def _credentials(
        self, namespace: str, job: DliBatchJob, user: UserSettings
    ) -> tuple[Credentials, bool]:
        """The job's Secret's keys if readable, else the user's own (the flag says which)."""
        ref = job.spec.credentials_secret_ref
        why = "the job uses the operator's default credentials"
        if ref is not None:
            data = await self._readable_secret(namespace, ref.name)
            if data and data.get(ref.access_key_key) and data.get(ref.secret_key_key):
                token = data.get(ref.security_token_key)
                keys = Credentials(data[ref.access_key_key], data[ref.secret_key_key], token)
                return keys, False
            why = (
                f"you may not read Secret {namespace}/{ref.name}, or it is not a "
                f"{CREDENTIALS_TYPE} Secret with its keys"
            )
        if user.credentials is None:
            raise PluginError(
                f"no DLI credentials: {why}; set {ENV_ACCESS_KEY} and {ENV_SECRET_KEY} "
                f"(and {ENV_SECURITY_TOKEN} for temporary credentials), {CONFIGURE_HINT} "
                "--credentials-from-env"
            )
        return user.credentials, True

    async def _readable_secret(self, namespace: str, name: str) -> dict[str, str] | None:
        """The Secret's values, only if it is a credentials Secret (as the operator requires)."""
        try:
            secret = await self.kube.read_secret(namespace, name)
        except KubeApiError as exc:
            if exc.status in (401, 403):
                return None  # not the user's to read: their own keys are the fallback
            raise
        if secret is None or secret.type != CREDENTIALS_TYPE:
            return None
        try:
            return {key: value.decode("utf-8").strip() for key, value in secret.data.items()}
        except UnicodeDecodeError:
            return None


def job_endpoint(job: DliBatchJob) -> str | None:
    """Where the job's batch lives: the recorded target, else what its spec names."""
    target, spec = job.status.target, job.spec
    if target is not None and target.endpoint:
        return target.endpoint
    return spec.endpoint or (endpoint_for_region(spec.region) if spec.region else None)


def job_project(job: DliBatchJob) -> str | None:
    target = job.status.target
    return (target.project_id if target is not None else None) or job.spec.project_id


def _foreign_endpoint(endpoint: str) -> PluginError:
    """The user's keys go only where the user sends them: not to a job-chosen host.

    A signed request carries the access key, and a temporary key's security token as is
    (``X-Security-Token``); the endpoint came from the job's spec or status.
    """
    return PluginError(
        f"the job sends DLI calls to {endpoint}, and kubectl dli sends your own credentials "
        f"only to a region's DLI endpoint or to the endpoint you name: set "
        f"{ENV_ENDPOINT}={endpoint} if you trust it (or pass --endpoint, or save it with "
        "kubectl dli configure)"
    )
