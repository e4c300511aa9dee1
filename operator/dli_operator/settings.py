"""Operator configuration, read once from ``DLI_OPERATOR_*`` environment variables.

Nested groups use ``__``: ``DLI_OPERATOR_DLI__ENDPOINT``,
``DLI_OPERATOR_RECONCILE__POLL_INTERVAL_SECONDS``.
Every field documents its unit; durations are ``*_seconds`` floats. Secrets are ``SecretStr`` so
they never print. A plain-http endpoint (the emulator) is refused unless
``DLI_OPERATOR_DLI__ALLOW_INSECURE_ENDPOINT=true`` (DESIGN.md, Settings).
"""

from __future__ import annotations

import functools

from pydantic import BaseModel, ConfigDict, Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


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
    adopt_window_seconds: float = Field(600.0, gt=0)
    """How far before a recorded submission intent to look for the job when adopting it."""
    blocked_retry_seconds: float = Field(30.0, gt=0)
    """How soon a job blocked on credentials or configuration (a user must act) is retried."""
    secret_cache_seconds: float = Field(30.0, ge=0)
    """How long a credentials Secret is cached; rotation is picked up after at most this long."""


class MetricsSettings(BaseModel):
    """Prometheus metrics."""

    model_config = ConfigDict(use_attribute_docstrings=True)

    port: int = Field(9090, ge=0, le=65535)
    """Port of the ``/metrics`` endpoint; 0 turns it off."""
    namespace_label: bool = False
    """Label job metrics with the job's namespace (one series per namespace and phase)."""


class PeeringSettings(BaseModel):
    """kopf peering between replicas (``dli-operator run --peering NAME --priority N``)."""

    model_config = ConfigDict(use_attribute_docstrings=True)

    lifetime_seconds: int = Field(60, ge=1)
    """How long a replica's keep-alive counts: a standby takes over at most this long after the
    active replica died. Replicas renew it a few seconds before it runs out (kopf's default 60)."""


class Settings(BaseSettings):
    """All of the operator's settings."""

    model_config = SettingsConfigDict(
        env_prefix="DLI_OPERATOR_", env_nested_delimiter="__", extra="ignore"
    )

    dli: DliSettings = DliSettings()
    reconcile: ReconcileSettings = ReconcileSettings()
    metrics: MetricsSettings = MetricsSettings()
    peering: PeeringSettings = PeeringSettings()

    @model_validator(mode="after")
    def _endpoint_is_safe(self) -> Settings:
        endpoint = self.dli.endpoint
        if endpoint and endpoint.startswith("http://") and not self.dli.allow_insecure_endpoint:
            raise ValueError(
                "DLI_OPERATOR_DLI__ENDPOINT is plain http; "
                "set DLI_OPERATOR_DLI__ALLOW_INSECURE_ENDPOINT=true to allow it"
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
    if default is None:
        return ""
    return f"`{str(default).lower() if isinstance(default, bool) else default}`"
