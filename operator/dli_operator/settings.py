"""Operator configuration, read once from ``DLI_OPERATOR_*`` environment variables.

Nested groups use ``__``: ``DLI_OPERATOR_DLI__ENDPOINT``,
``DLI_OPERATOR_RECONCILE__POLL_INTERVAL_SECONDS``.
Every field documents its unit; durations are ``*_seconds`` floats. Secrets are ``SecretStr`` so
they never print. A plain-http endpoint (the emulator) is refused unless
``DLI_OPERATOR_DLI__ALLOW_INSECURE_ENDPOINT=true`` (DESIGN.md, Settings).
"""

from __future__ import annotations

import functools
import os
from typing import Annotated, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict


class DliSettings(BaseModel):
    """How to reach DLI when a DliBatchJob does not say otherwise."""

    model_config = ConfigDict(use_attribute_docstrings=True)

    endpoint: str | None = None
    """Explicit DLI endpoint URL; overrides ``region``. Example: ``http://127.0.0.1:8099``."""
    region: str | None = None
    """Huawei Cloud region such as ``cn-north-4``; the endpoint is ``https://dli.{region}...``."""
    project_id: str | None = None
    """Default project id (32 hex characters) for jobs without ``spec.projectId``."""
    access_key: SecretStr | None = None
    """Default access key (AK) for jobs without ``spec.credentialsSecretRef``."""
    secret_key: SecretStr | None = None
    """Default secret key (SK)."""
    security_token: SecretStr | None = None
    """Security token of temporary AK/SK credentials, if any."""
    allow_insecure_endpoint: bool = False
    """Allow a plain ``http://`` endpoint. Only for the local emulator."""
    connect_timeout_seconds: float = Field(5.0, gt=0)
    """Time allowed to open a connection to DLI."""
    read_timeout_seconds: float = Field(30.0, gt=0)
    """Time allowed for DLI to answer one request."""
    request_deadline_seconds: float = Field(90.0, gt=0)
    """Longest one DLI request may take in all, sending to last byte. The read timeout is per
    read, so a reply dripping slowly would otherwise hold a job's step forever."""
    max_connections: int = Field(20, ge=1)
    """Connections kept open per DLI endpoint."""
    requests_per_second: float = Field(10.0, gt=0)
    """Client-side limit of DLI requests per endpoint and project. DLI publishes none, but its
    API gateway throttles per user per minute (APIG.0308)."""
    burst: int = Field(20, ge=1)
    """Requests allowed at once above the steady rate."""


class ReconcileSettings(BaseModel):
    """How the operator drives jobs."""

    model_config = ConfigDict(use_attribute_docstrings=True)

    poll_interval_seconds: float = Field(10.0, gt=0)
    """How often a running job's state is refreshed (Airflow's DLI trigger polls every 10 s)."""
    list_page_size: int = Field(100, ge=1, le=1000)
    """Page size of the batched list calls (Terraform pages by 100)."""
    retry_backoff_seconds: float = Field(10.0, ge=0)
    """First delay before resubmitting a dead job under autoRecovery; doubles per retry."""
    retry_backoff_max_seconds: float = Field(300.0, ge=0)
    """Upper bound of the resubmission delay."""
    error_backoff_seconds: float = Field(5.0, ge=0)
    """First delay after a transient DLI error (5xx, timeout, throttling)."""
    late_create_margin_seconds: float = Field(120.0, ge=0)
    """How long DLI may still create a job after its create call went unanswered (a slow back
    end behind the gateway). A create whose outcome is unknown is looked up for the longest a
    call may take plus this margin (and any clock skew between replicas) before it is sent
    again."""
    abandon_after_seconds: float = Field(600.0, gt=0)
    """How long the finalizer of a deleted job keeps trying to cancel its DLI batch when the
    job's credentials are gone (a deleted Secret or RoleBinding); then it lets go with a Warning
    Event naming the batch. In a namespace being deleted it lets go at once."""
    blocked_retry_seconds: float = Field(30.0, gt=0)
    """How soon a job blocked on credentials or configuration (a user must act) is retried."""
    secret_cache_seconds: float = Field(30.0, ge=0)
    """How long a credentials Secret is cached; rotation is picked up after at most this long."""


def _comma_separated(value: object) -> object:
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    return value


Names = Annotated[list[str], NoDecode, BeforeValidator(_comma_separated)]
"""A list given as ``a,b,c`` in the environment."""


class PolicySettings(BaseModel):
    """Who may use which identity, where: decided by the admin, never by a job's author.

    docs/security.md explains each rule. Every refusal is a ``PolicyDenied`` condition and
    Event naming the setting, and nothing is sent.
    """

    model_config = ConfigDict(use_attribute_docstrings=True)

    allowed_endpoints: Names = []
    """More DLI endpoints jobs with their own credentials may name in `spec.endpoint`
    (comma-separated URLs). The configured endpoint is always allowed."""
    allowed_regions: Names = []
    """More regions jobs with their own credentials may name in `spec.region` (comma-separated);
    each allows that region's official endpoint. The configured region is always allowed."""
    default_credentials_namespaces: Names = []
    """Namespaces whose jobs may use the operator's default credentials (comma-separated; `*`:
    all). Empty: none, unless the selector below admits them."""
    default_credentials_namespace_selector: str = ""
    """Label selector of further namespaces that may use the default credentials, e.g.
    `dli.dev/default-credentials=allowed` (`key`, `key=value`, `key!=value`, comma-separated)."""
    namespace_projects: dict[str, list[str]] = {}
    """JSON map from namespace (or `*`) to the project ids its jobs may target, e.g.
    `{"team-a": ["<project id>"]}`. A namespace without an entry may target any project with its
    own credentials, and only the configured project with the default ones."""


class IdentitySettings(BaseModel):
    """Where the operator's default credentials come from (docs/security.md, Identity)."""

    model_config = ConfigDict(use_attribute_docstrings=True)

    source: Literal["env", "file", "oidc", "metadata"] = "env"
    """`env`: the static `DLI_OPERATOR_DLI__ACCESS_KEY`/`..._SECRET_KEY`/`..._SECURITY_TOKEN`.
    `file`: a mounted Secret directory, re-read when it changes. `oidc`: the pod's projected
    ServiceAccount token exchanged at IAM (workload identity on CCE). `metadata`: the node's
    agency through the ECS metadata service. The last two are temporary keys, refreshed."""
    credentials_dir: str = "/var/run/secrets/dli.dev/credentials"
    """With `file`: the directory holding the files `accessKey`, `secretKey` and optionally
    `securityToken` (a mounted `dli.dev/credentials` Secret)."""
    token_file: str = "/var/run/secrets/dli.dev/serviceaccount/token"
    """With `oidc`: the projected ServiceAccount token, re-read for every exchange."""
    idp_id: str = ""
    """With `oidc`: the IAM identity provider (OpenID Connect) that trusts the cluster's issuer."""
    iam_endpoint: str = "https://iam.myhuaweicloud.com"
    """With `oidc`: the IAM endpoint (the SDK's default; a regional one also works)."""
    duration_seconds: int = Field(3600, ge=900, le=86400)
    """With `oidc`: lifetime asked for the temporary keys (IAM allows 900 to 86400)."""
    metadata_endpoint: str = "http://169.254.169.254"
    """With `metadata`: the ECS metadata service."""
    refresh_before_seconds: float = Field(2400.0, gt=0)
    """Temporary keys are renewed this long before they expire (the SDK: 40 min), or halfway
    through their lifetime if that is sooner."""


class MetricsSettings(BaseModel):
    """Prometheus metrics."""

    model_config = ConfigDict(use_attribute_docstrings=True)

    port: int = Field(9090, ge=0, le=65535)
    """Port of the ``/metrics`` endpoint; 0 turns it off."""
    namespace_label: bool = False
    """Label job metrics with the job's namespace (one series per namespace and phase)."""


class EngineSettings(BaseModel):
    """The operator's work queue (docs/architecture.md)."""

    model_config = ConfigDict(use_attribute_docstrings=True)

    workers: int = Field(32, ge=2, le=1000)
    """How many jobs are stepped at once. Half of them at most submit (a submission may wait
    for a DLI request slot); the rest poll and cancel, so a backlog never delays a poll."""


class ShardingSettings(BaseModel):
    """Sharing the jobs among replicas by consistent hashing, membership by Leases (issue 18)."""

    model_config = ConfigDict(use_attribute_docstrings=True)

    enabled: bool = False
    """Split the jobs among the replicas of one ring; off: one replica works on every job."""
    identity: str = ""
    """This replica's member id; empty: the `HOSTNAME` variable, i.e. the pod's name."""
    namespace: str = "default"
    """Namespace of the replicas' Leases: the operator's own (the chart and deploy/ set it)."""
    ring: str = "dli-operator"
    """Name of the ring: its Leases are `<ring>-<identity>`, labelled `dli.dev/shard-ring`."""
    lease_seconds: float = Field(15.0, gt=0)
    """How long a replica's Lease counts without a renew: a dead replica's jobs move after at
    most this long, and a replica that cannot renew for this long stops acting on any job."""
    renew_seconds: float = Field(5.0, gt=0)
    """How often a replica renews its Lease and re-reads the others'; below the lease."""

    @model_validator(mode="after")
    def _renews_within_the_lease(self) -> ShardingSettings:
        if self.renew_seconds >= self.lease_seconds:
            raise ValueError(
                "DLI_OPERATOR_SHARDING__RENEW_SECONDS must be below "
                "DLI_OPERATOR_SHARDING__LEASE_SECONDS"
            )
        return self

    def resolved_identity(self) -> str:
        """The member id: ``identity``, else ``HOSTNAME`` (a StatefulSet pod's stable name)."""
        return self.identity or os.environ.get("HOSTNAME", "")


class Settings(BaseSettings):
    """All of the operator's settings."""

    model_config = SettingsConfigDict(
        env_prefix="DLI_OPERATOR_", env_nested_delimiter="__", extra="ignore"
    )

    dli: DliSettings = DliSettings()
    policy: PolicySettings = PolicySettings()
    identity: IdentitySettings = IdentitySettings()
    reconcile: ReconcileSettings = ReconcileSettings()
    metrics: MetricsSettings = MetricsSettings()
    engine: EngineSettings = EngineSettings()
    sharding: ShardingSettings = ShardingSettings()

    @model_validator(mode="after")
    def _endpoint_is_safe(self) -> Settings:
        endpoint = self.dli.endpoint
        if endpoint and endpoint.startswith("http://") and not self.dli.allow_insecure_endpoint:
            raise ValueError(
                "DLI_OPERATOR_DLI__ENDPOINT is plain http; "
                "set DLI_OPERATOR_DLI__ALLOW_INSECURE_ENDPOINT=true to allow it"
            )
        return self

    @model_validator(mode="after")
    def _policy_and_identity_are_usable(self) -> Settings:
        insecure = self.dli.allow_insecure_endpoint
        urls = [("POLICY__ALLOWED_ENDPOINTS", url) for url in self.policy.allowed_endpoints]
        urls.append(("IDENTITY__IAM_ENDPOINT", self.identity.iam_endpoint))
        for variable, url in urls:
            scheme = url.split("://", 1)[0] if "://" in url else ""
            if scheme not in ("https", "http") or (scheme == "http" and not insecure):
                raise ValueError(
                    f"DLI_OPERATOR_{variable}: {url!r} is not an https URL "
                    "(plain http needs DLI_OPERATOR_DLI__ALLOW_INSECURE_ENDPOINT=true)"
                )
        if self.identity.source == "oidc" and not self.identity.idp_id:
            raise ValueError(
                "DLI_OPERATOR_IDENTITY__SOURCE=oidc needs DLI_OPERATOR_IDENTITY__IDP_ID: "
                "the IAM identity provider that trusts the cluster's ServiceAccount issuer"
            )
        return self


@functools.cache
def get_settings() -> Settings:
    """The process's settings, validated once."""
    return Settings()


def settings_table_markdown() -> str:
    """Every ``DLI_OPERATOR_*`` variable with its default and meaning, for the README."""
    rows = ["| Variable | Default | Meaning |", "|---|---|---|"]
    for group, info in Settings.model_fields.items():
        model = info.annotation
        if not (isinstance(model, type) and issubclass(model, BaseModel)):
            continue
        for name, field in model.model_fields.items():
            variable = f"`DLI_OPERATOR_{group.upper()}__{name.upper()}`"
            text = " ".join((field.description or "").split()).replace("``", "`")
            rows.append(f"| {variable} | {_shown(field.default)} | {text} |")
    return "\n".join(rows) + "\n"


def _shown(default: object) -> str:
    if default is None or (isinstance(default, str | list | dict) and not default):
        return ""
    return f"`{str(default).lower() if isinstance(default, bool) else default}`"
