"""The operator's shared collaborators: DLI clients, rate limiters, poll caches, credentials.

One ``DliClient`` per (endpoint, project, credentials source), one ``RateLimiter`` per
(endpoint, project) because that is what DLI's gateway throttles, and one ``BatchCache`` per
client. Every target, whether resolved from a spec or recorded with a submission, passes the
admin's policy (``policy.py``) before any credential is loaded or any request is sent.
Credentials are read on use: a job's ``dli.dev/credentials`` Secret (cached briefly, so
rotation needs no restart and a missing one is reported on the job), or the operator's own
identity provider (``dli/identity.py``), renewed before it expires. What a credential is and
where it comes from is ``credentials.py`` (which also holds the errors, re-exported here); the
caches are here. Nothing here prints or stores a secret value.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

import httpx

from dli_operator import credentials, metrics, policy
from dli_operator.credentials import (
    DEFAULT_SOURCE,
    ConfigurationError,
    CredentialsRejected,
    PolicyViolation,
    Rejection,
)
from dli_operator.dli.auth import AkSkAuth, Credentials
from dli_operator.dli.client import DliClient, checked_endpoint, endpoint_for_region
from dli_operator.dli.models import BatchJob
from dli_operator.dli.retries import RetryPolicy
from dli_operator.kubeapi import KubeApi, KubeApiError, Secret
from dli_operator.polling import BatchCache
from dli_operator.ratelimit import RateLimiter
from dli_operator.resources.batchjob import DliBatchJobSpec
from dli_operator.settings import Settings

# Clients, limiters and caches nobody used for this long are closed and forgotten (issue 10,
# item 13); a live job uses its own at least every poll, backoff or idle recheck (<= 300 s).
IDLE_EVICT_SECONDS = 900.0
EVICT_EVERY_SECONDS = 60.0
__all__ = [
    "DEFAULT_SOURCE",
    "ConfigurationError",
    "CredentialsRejected",
    "Dli",
    "PolicyViolation",
    "Recorded",
    "Runtime",
    "Target",
]


@dataclass(frozen=True)
class Target:
    """Where a job's DLI calls go, and with whose credentials (the fields of a recorded
    ``status.target``)."""

    endpoint: str
    project_id: str
    credentials_secret: str | None = None
    """The ``dli.dev/credentials`` Secret in the job's namespace; None: the operator's own."""


class Recorded(Protocol):
    """A target as stored with a submission (``status.target``): read, never trusted."""

    @property
    def endpoint(self) -> str: ...
    @property
    def project_id(self) -> str: ...
    @property
    def credentials_secret(self) -> str | None: ...


@dataclass
class Dli:
    """Everything needed to talk to DLI for one job."""

    client: DliClient
    limiter: RateLimiter
    cache: BatchCache
    source: str = ""
    """The credentials source the client signs with (a key of ``Runtime._credentials``)."""
    used: float = field(default_factory=time.monotonic)


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
        self._limiters: dict[tuple[str, str], RateLimiter] = {}
        self._share = 1.0
        self._dli: dict[tuple[Target, str], Dli] = {}
        self._credentials: dict[str, Credentials] = {}
        self._secrets: dict[tuple[str, str], tuple[float, Secret | None]] = {}
        self._labels: dict[str, tuple[float, dict[str, str]]] = {}
        self._rejected: dict[str, Rejection] = {}
        self._swept = time.monotonic()
        self._trusted = _trusted(settings)
        self._identity = credentials.identity(settings, transport)
        metrics.watch_limiters(self._limiters.values)
        # Set by the engine: a list that shows a job final makes it due now (polling.py).
        self.wake: Callable[[str], None] = lambda key: None

    def share_budget(self, replicas: int) -> None:
        """Take 1/``replicas`` of every DLI rate budget: the shard's share (issue 18)."""
        self._share = 1.0 / max(1, replicas)
        for limiter in self._limiters.values():
            limiter.share(self._share)

    @property
    def submit_rate(self) -> float:
        """DLI requests per second this replica may send to one endpoint and project."""
        return self.settings.dli.requests_per_second * self._share

    async def aclose(self) -> None:
        for dli in self._dli.values():
            await dli.client.aclose()
        if self._identity is not None:
            await self._identity.aclose()
        await self.kube.aclose()

    def target_for(self, spec: DliBatchJobSpec) -> Target:
        """Where a new attempt of ``spec`` goes (to record with its intent); ConfigurationError
        if it cannot go anywhere. The policy is applied where the target is used: ``dli_at``."""
        cfg = self.settings.dli
        project = spec.project_id or cfg.project_id
        if not project:
            raise ConfigurationError(
                "no DLI project id: set spec.projectId or DLI_OPERATOR_DLI__PROJECT_ID"
            )
        endpoint = spec.endpoint or (spec.region and endpoint_for_region(spec.region))
        endpoint = endpoint or self._trusted.default_endpoint
        if not endpoint:
            raise ConfigurationError(
                "no DLI endpoint: set spec.region, spec.endpoint or DLI_OPERATOR_DLI__REGION"
            )
        secret = credentials.secret_name(spec.credentials_secret_ref)
        return Target(self._checked(endpoint), project, secret)

    async def dli_at(self, namespace: str, recorded: Recorded) -> Dli:
        """The client, limiter and cache for a target, recorded or new, once the admin's policy
        allows it (PolicyViolation otherwise): nothing is loaded or sent before that."""
        target = Target(recorded.endpoint, recorded.project_id, recorded.credentials_secret)
        await self._enforce(namespace, target)
        source = await self._refresh_credentials(namespace, target.credentials_secret)
        self._check_rejection(source)
        key = (target, source)
        if key not in self._dli:
            self._dli[key] = self._build(target, source)
        dli = self._dli[key]
        dli.used = time.monotonic()
        await self._evict_idle()
        return dli

    def reject(self, dli: Dli, message: str) -> None:
        """DLI answered ``dli``'s credentials with an authentication error (``message``)."""
        last = self._rejected.get(dli.source)
        keys = self._credentials[dli.source]
        self._rejected[dli.source] = credentials.rejected(last, keys, message)

    def _check_rejection(self, source: str) -> None:
        rejection = self._rejected.get(source)
        if rejection is not None:
            credentials.check(rejection, self._credentials[source])

    async def _evict_idle(self) -> None:
        """Close and forget clients, limiters, caches and credentials nobody used lately."""
        now = time.monotonic()
        if now - self._swept < EVICT_EVERY_SECONDS:
            return
        self._swept = now
        idle = [k for k, d in self._dli.items() if now - d.used > IDLE_EVICT_SECONDS]
        for key in idle:
            if self._dli[key].limiter.waiting:
                continue  # someone waits for a slot with it: in use
            await self._dli.pop(key).client.aclose()
        kept = self._dli.values()
        sources = {d.source for d in kept}
        for source in self._credentials.keys() - sources:
            del self._credentials[source]
            self._rejected.pop(source, None)
        limiters = {(t.endpoint, t.project_id) for t, _ in self._dli}
        for target in self._limiters.keys() - limiters:
            del self._limiters[target]
        self._secrets = {k: v for k, v in self._secrets.items() if v[0] > now}
        self._labels = {k: v for k, v in self._labels.items() if v[0] > now}

    def _checked(self, endpoint: str) -> str:
        try:
            return checked_endpoint(
                endpoint, allow_insecure=self.settings.dli.allow_insecure_endpoint
            )
        except ValueError as exc:
            raise ConfigurationError(str(exc)) from exc

    async def _enforce(self, namespace: str, target: Target) -> None:
        rules = self.settings.policy
        default = target.credentials_secret is None
        labels = None
        if default and policy.needs_labels(rules, namespace):
            labels = await self._namespace_labels(namespace)
        refused = policy.refusal(
            rules,
            self._trusted,
            namespace=namespace,
            labels=labels,
            endpoint=self._checked(target.endpoint),
            project=target.project_id,
            default_credentials=default,
        )
        if refused is not None:
            raise PolicyViolation(f"refused by {refused.rule}: {refused.message}")

    async def _refresh_credentials(self, namespace: str, secret: str | None) -> str:
        if secret is None:
            self._credentials[DEFAULT_SOURCE] = await credentials.default_credentials(
                self._identity
            )
            return DEFAULT_SOURCE
        # The keys are fixed by the Secret type, so the Secret alone names the credentials:
        # two jobs naming it always sign with the same keys (issue 10, item 11).
        source = f"secret:{namespace}/{secret}"
        self._credentials[source] = await self._secret_credentials(namespace, secret)
        return source

    async def _secret_credentials(self, namespace: str, name: str) -> Credentials:
        where = f"Secret {namespace}/{name}"
        return credentials.from_secret(await self._secret(namespace, name), where)

    async def _secret(self, namespace: str, name: str) -> Secret | None:
        key = (namespace, name)
        cached = self._secrets.get(key)
        if cached and cached[0] > time.monotonic():
            return cached[1]
        try:
            secret = await self.kube.read_secret(namespace, name)
        except KubeApiError as exc:
            if exc.status != 403:
                raise
            # Least privilege: Secret reads are granted per namespace (docs/install.md).
            raise ConfigurationError(
                f"the operator may not read Secret {namespace}/{name}: bind the ClusterRole "
                f"dli-operator-secret-reader in namespace {namespace}"
            ) from exc
        ttl = self.settings.reconcile.secret_cache_seconds if secret is not None else 0.0
        self._secrets[key] = (time.monotonic() + ttl, secret)
        return secret

    async def _namespace_labels(self, namespace: str) -> dict[str, str]:
        cached = self._labels.get(namespace)
        if cached and cached[0] > time.monotonic():
            return cached[1]
        try:
            labels = await self.kube.namespace_labels(namespace)
        except KubeApiError as exc:
            raise ConfigurationError(
                f"cannot read the labels of namespace {namespace} for "
                f"{policy.DEFAULT_SELECTOR}: {exc}"
            ) from exc
        ttl = self.settings.reconcile.secret_cache_seconds
        self._labels[namespace] = (time.monotonic() + ttl, labels)
        return labels

    def _build(self, target: Target, source: str) -> Dli:
        cfg = self.settings.dli
        limiter = self._limiters.get((target.endpoint, target.project_id))
        if limiter is None:
            limiter = RateLimiter(cfg.requests_per_second, cfg.burst)
            limiter.share(self._share)
            self._limiters[(target.endpoint, target.project_id)] = limiter

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
            deadline_seconds=cfg.request_deadline_seconds,
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

        cache = BatchCache(
            lister, self.settings.reconcile.poll_interval_seconds, wake=lambda key: self.wake(key)
        )
        return Dli(client, limiter, cache, source)


def _trusted(settings: Settings) -> policy.Trusted:
    """The configured target and every endpoint the operator may call, normalised."""
    cfg, rules = settings.dli, settings.policy
    allow = cfg.allow_insecure_endpoint
    configured = cfg.endpoint or (cfg.region and endpoint_for_region(cfg.region)) or None
    default = checked_endpoint(configured, allow_insecure=allow) if configured else None
    endpoints = {checked_endpoint(url, allow_insecure=allow) for url in rules.allowed_endpoints}
    regions = [*rules.allowed_regions, *([cfg.region] if cfg.region else [])]
    endpoints |= {endpoint_for_region(region) for region in regions}
    if default:
        endpoints.add(default)
    return policy.Trusted(default, cfg.project_id, frozenset(endpoints))
