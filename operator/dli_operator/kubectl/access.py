"""How ``kubectl dli`` reaches the cluster and DLI, as the user who runs it.

Kubernetes: the user's kubeconfig (``KUBECONFIG`` or ``~/.kube/config``, current context), read
by kopf's own kubeconfig login, so the plugin needs no Kubernetes client library.

DLI, for one job, resolved the way the operator resolves it (docs/observability.md):
- credentials: the job's ``spec.credentialsSecretRef`` Secret if the user may read it; else the
  user's own ``HUAWEICLOUD_SDK_AK`` / ``HUAWEICLOUD_SDK_SK`` (and ``HUAWEICLOUD_SDK_SECURITY_TOKEN``
  for temporary credentials), the variables the Huawei Cloud SDKs read;
- project: ``spec.projectId``, else ``HUAWEICLOUD_SDK_PROJECT_ID``;
- endpoint: ``spec.endpoint`` or ``spec.region``, else ``KUBECTL_DLI_ENDPOINT``, else
  ``HUAWEICLOUD_SDK_REGION``. A plain-http endpoint (the emulator) needs
  ``KUBECTL_DLI_ALLOW_INSECURE_ENDPOINT=true``, as it does for the operator.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx
import kopf
from pydantic import ValidationError

from dli_operator.dli.auth import AkSkAuth, Credentials
from dli_operator.dli.client import DliClient, checked_endpoint, endpoint_for_region
from dli_operator.kubeapi import CREDENTIALS_TYPE, KubeApi, KubeApiError
from dli_operator.resources.batchjob import DliBatchJob

ENV_ACCESS_KEY = "HUAWEICLOUD_SDK_AK"
ENV_SECRET_KEY = "HUAWEICLOUD_SDK_SK"
ENV_SECURITY_TOKEN = "HUAWEICLOUD_SDK_SECURITY_TOKEN"
ENV_PROJECT_ID = "HUAWEICLOUD_SDK_PROJECT_ID"
ENV_REGION = "HUAWEICLOUD_SDK_REGION"
ENV_ENDPOINT = "KUBECTL_DLI_ENDPOINT"
ENV_ALLOW_INSECURE = "KUBECTL_DLI_ALLOW_INSECURE_ENDPOINT"


class PluginError(Exception):
    """Something the user can fix, said in one sentence (printed as ``error: ...``)."""


@dataclass
class Session:
    """The cluster connection and the environment one ``kubectl dli`` command runs with."""

    kube: KubeApi
    env: Mapping[str, str]
    default_namespace: str = "default"
    transport: httpx.AsyncBaseTransport | None = None
    """For tests: where DLI requests go instead of the network."""
    sleep: Callable[[float], Awaitable[None]] = field(default=asyncio.sleep)

    @classmethod
    def from_kubeconfig(cls, env: Mapping[str, str]) -> Session:
        try:
            info = kopf.login_with_kubeconfig(settings=kopf.OperatorSettings())
        except (OSError, KeyError, kopf.LoginError) as exc:
            raise PluginError(f"cannot read the kubeconfig: {exc!r}") from exc
        if info is None:
            raise PluginError("no kubeconfig: set KUBECONFIG or create ~/.kube/config")
        return cls(KubeApi.from_connection(info), env, info.default_namespace or "default")

    async def job(self, namespace: str, name: str) -> tuple[DliBatchJob, dict[str, Any]]:
        """The job, parsed and as stored; PluginError if there is none."""
        body = await self.kube.get_object("dlibatchjobs", namespace, name)
        if body is None:
            raise PluginError(f'dlibatchjob "{name}" not found in namespace "{namespace}"')
        try:
            return DliBatchJob.from_body(body), body
        except ValidationError as exc:
            raise PluginError(f"dlibatchjob {namespace}/{name} does not parse: {exc}") from exc

    async def dli_for(self, job: DliBatchJob) -> DliClient:
        """A DLI client for this job's project and endpoint, signed with the resolved keys."""
        namespace = job.metadata.namespace or self.default_namespace
        credentials, yours = await self._credentials(namespace, job)
        if yours:
            self._refuse_foreign_endpoint(job)
        project = job.spec.project_id or self.env.get(ENV_PROJECT_ID)
        if not project:
            raise PluginError(
                f"no DLI project id: the job has no spec.projectId; set {ENV_PROJECT_ID}"
            )
        try:
            endpoint = checked_endpoint(self._endpoint(job), allow_insecure=self._insecure_ok)
        except ValueError as exc:
            raise PluginError(f"{exc}; set {ENV_ALLOW_INSECURE}=true to allow it") from exc
        return DliClient(
            project_id=project,
            endpoint=endpoint,
            auth=AkSkAuth(credentials),
            allow_insecure=self._insecure_ok,
            transport=self.transport,
        )

    @property
    def _insecure_ok(self) -> bool:
        return self.env.get(ENV_ALLOW_INSECURE, "").lower() in ("1", "true", "yes")

    def _endpoint(self, job: DliBatchJob) -> str:
        spec, region = job.spec, self.env.get(ENV_REGION)
        endpoint = spec.endpoint or (spec.region and endpoint_for_region(spec.region))
        endpoint = (
            endpoint or self.env.get(ENV_ENDPOINT) or (region and endpoint_for_region(region))
        )
        if not endpoint:
            raise PluginError(
                f"no DLI endpoint: the job names no region or endpoint; set {ENV_ENDPOINT} "
                f"or {ENV_REGION}"
            )
        return endpoint

    def _refuse_foreign_endpoint(self, job: DliBatchJob) -> None:
        """The user's own keys go only where the user sends them, not to a job-chosen host.

        ``spec.endpoint`` is written by whoever wrote the job, and a signed request carries the
        access key, and a temporary key's security token as is (``X-Security-Token``).
        """
        endpoint = job.spec.endpoint
        if endpoint and endpoint.rstrip("/") != (self.env.get(ENV_ENDPOINT) or "").rstrip("/"):
            raise PluginError(
                f"the job sends DLI calls to {endpoint}, and kubectl dli sends your own "
                f"credentials only to a region's DLI endpoint or to {ENV_ENDPOINT}: set "
                f"{ENV_ENDPOINT}={endpoint} if you trust it"
            )

    async def _credentials(self, namespace: str, job: DliBatchJob) -> tuple[Credentials, bool]:
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
        access_key, secret_key = self.env.get(ENV_ACCESS_KEY), self.env.get(ENV_SECRET_KEY)
        if not (access_key and secret_key):
            raise PluginError(
                f"no DLI credentials: {why}; set {ENV_ACCESS_KEY} and {ENV_SECRET_KEY} "
                f"(and {ENV_SECURITY_TOKEN} for temporary credentials)"
            )
        return Credentials(access_key, secret_key, self.env.get(ENV_SECURITY_TOKEN) or None), True

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
