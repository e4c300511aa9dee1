"""The operator's shared collaborators: DLI clients, rate limiters, poll caches, credentials.

One ``DliClient`` per (endpoint, project, credentials source), one ``RateLimiter`` per
(endpoint, project) because that is what DLI's gateway throttles, and one ``BatchCache`` per
client. Credentials are read on use from the job's Secret (cached briefly), so a rotated
Secret is picked up without a restart and a missing one is reported on the job, not fatal.
Nothing here prints or stores a secret key.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import httpx

from dli_operator import metrics
from dli_operator.dli.auth import AkSkAuth, Credentials
from dli_operator.dli.client import DliClient, checked_endpoint, endpoint_for_region
from dli_operator.dli.models import BatchJob
from dli_operator.dli.retries import RetryPolicy
from dli_operator.kubeapi import KubeApi, KubeApiError
from dli_operator.polling import BatchCache
from dli_operator.ratelimit import RateLimiter
from dli_operator.resources.batchjob import DliBatchJobSpec
from dli_operator.settings import Settings

DEFAULT_SOURCE = "operator-default"


class ConfigurationError(Exception):
    """The job cannot be sent anywhere yet: no endpoint, project or credentials (user-fixable)."""


@dataclass(frozen=True)
class Target:
    endpoint: str
    project_id: str


@dataclass
class Dli:
    """Everything needed to talk to DLI for one job."""

    client: DliClient
    limiter: RateLimiter
    cache: BatchCache


class Runtime:
    """Long-lived state shared by all handlers of one operator process."""

    def __init__(
        self,
        settings: Settings,
        kube: KubeApi,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        retry_policy: RetryPolicy | None = None,
    ) -> None:
        self.settings = settings
        self.kube = kube
        # Passed to every DliClient: a proxy-aware or in-process transport, a retry policy.
        self._transport = transport
        self._retry_policy = retry_policy
        self._limiters: dict[Target, RateLimiter] = {}
        self._dli: dict[tuple[Target, str], Dli] = {}
        self._credentials: dict[str, Credentials] = {}
        self._secrets: dict[tuple[str, str], tuple[float, dict[str, str] | None]] = {}
        metrics.watch_limiters(self._limiters.values)

    async def aclose(self) -> None:
        for dli in self._dli.values():
            await dli.client.aclose()
        await self.kube.aclose()

    async def dli_for(self, namespace: str, spec: DliBatchJobSpec) -> Dli:
        """The client, limiter and cache for this job; raises ConfigurationError."""
        target = self._target(spec)
        source = await self._refresh_credentials(namespace, spec)
        key = (target, source)
        if key not in self._dli:
            self._dli[key] = self._build(target, source)
        return self._dli[key]

    def _target(self, spec: DliBatchJobSpec) -> Target:
        cfg = self.settings.dli
        project = spec.project_id or cfg.project_id
        if not project:
            raise ConfigurationError(
                "no DLI project id: set spec.projectId or DLI_OPERATOR_DLI__PROJECT_ID"
            )
        endpoint = spec.endpoint or (spec.region and endpoint_for_region(spec.region))
        endpoint = endpoint or cfg.endpoint or (cfg.region and endpoint_for_region(cfg.region))
        if not endpoint:
            raise ConfigurationError(
                "no DLI endpoint: set spec.region, spec.endpoint or DLI_OPERATOR_DLI__REGION"
            )
        try:
            endpoint = checked_endpoint(endpoint, allow_insecure=cfg.allow_insecure_endpoint)
        except ValueError as exc:
            raise ConfigurationError(str(exc)) from exc
        return Target(endpoint, project)

    async def _refresh_credentials(self, namespace: str, spec: DliBatchJobSpec) -> str:
        ref = spec.credentials_secret_ref
        if ref is None:
            cfg = self.settings.dli
            if not (cfg.access_key and cfg.secret_key):
                raise ConfigurationError(
                    "no DLI credentials: set spec.credentialsSecretRef, or give the operator "
                    "DLI_OPERATOR_DLI__ACCESS_KEY and DLI_OPERATOR_DLI__SECRET_KEY"
                )
            token = cfg.security_token.get_secret_value() if cfg.security_token else None
            self._credentials[DEFAULT_SOURCE] = Credentials(
                cfg.access_key.get_secret_value(), cfg.secret_key.get_secret_value(), token
            )
            return DEFAULT_SOURCE
        data = await self._secret(namespace, ref.name)
        where = f"Secret {namespace}/{ref.name}"
        if data is None:
            raise ConfigurationError(f"{where} (spec.credentialsSecretRef) does not exist")
        for key in (ref.access_key_key, ref.secret_key_key):
            if not data.get(key):
                raise ConfigurationError(f"{where} has no key {key!r}")
        source = f"secret:{namespace}/{ref.name}"
        self._credentials[source] = Credentials(
            data[ref.access_key_key], data[ref.secret_key_key], data.get(ref.security_token_key)
        )
        return source

    async def _secret(self, namespace: str, name: str) -> dict[str, str] | None:
        key = (namespace, name)
        cached = self._secrets.get(key)
        if cached and cached[0] > time.monotonic():
            return cached[1]
        try:
            data = await self.kube.read_secret(namespace, name)
        except KubeApiError as exc:
            if exc.status != 403:
                raise
            # Least privilege: Secret reads are granted per namespace (docs/install.md).
            raise ConfigurationError(
                f"the operator may not read Secret {namespace}/{name}: bind the ClusterRole "
                f"dli-operator-secret-reader in namespace {namespace}"
            ) from exc
        ttl = self.settings.reconcile.secret_cache_seconds if data is not None else 0.0
        self._secrets[key] = (time.monotonic() + ttl, data)
        return data

    def _build(self, target: Target, source: str) -> Dli:
        cfg = self.settings.dli
        limiter = self._limiters.setdefault(target, RateLimiter(cfg.requests_per_second, cfg.burst))

        def observe(operation: str, outcome: str, seconds: float) -> None:
            metrics.record_api_call(operation, outcome, seconds)
            # Every attempt steers the shared rate; the driver adds Retry-After pauses.
            if outcome == "throttled":
                limiter.throttled()
            elif outcome == "success":
                limiter.succeeded()

        client = DliClient(
            project_id=target.project_id,
            endpoint=target.endpoint,
            auth=AkSkAuth(lambda: self._credentials[source]),
            allow_insecure=cfg.allow_insecure_endpoint,
            timeout_seconds=cfg.read_timeout_seconds,
            connect_timeout_seconds=cfg.connect_timeout_seconds,
            max_connections=cfg.max_connections,
            on_call=observe,
            transport=self._transport,
            retry_policy=self._retry_policy,
        )
        page = self.settings.reconcile.list_page_size

        async def lister(queue: str, start_ms: int | None) -> list[BatchJob]:
            pages = client.iter_batches(
                queue_name=queue,
                start=start_ms,
                size=page,
                pace=lambda: limiter.acquire(urgent=True),
            )
            return [job async for job in pages]

        cache = BatchCache(lister, self.settings.reconcile.poll_interval_seconds)
        return Dli(client, limiter, cache)
