"""Where a job's DLI credentials come from, and the errors a job shows when it cannot be sent.

A job's credentials are a ``dli.dev/credentials`` Secret in its namespace, whose keys are fixed
by the type (``secret_name``, ``from_secret``), or the operator's own identity provider
(``identity``, ``default_credentials``). A set DLI rejected is remembered by its fingerprint
only (``rejected``, ``check``). Nothing here caches, prints or stores a secret value: the
caches are the ``Runtime``'s (``runtime.py``).
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass

import httpx

from dli_operator.dli.auth import Credentials
from dli_operator.dli.client import checked_endpoint
from dli_operator.dli.errors import DliError
from dli_operator.dli.identity import (
    CredentialsProvider,
    FileCredentials,
    MetadataCredentials,
    OidcCredentials,
    StaticCredentials,
)
from dli_operator.kubeapi import CREDENTIALS_TYPE, Secret
from dli_operator.reconcile import Reason
from dli_operator.resources.batchjob import SecretRef
from dli_operator.settings import Settings

DEFAULT_SOURCE = "operator-default"
# DLI's gateway locks an access key after 5 failed signatures in a row (dli-api.md, APIG.0301):
# once DLI rejected a set of credentials, nobody sends with exactly those again for this long
# (doubling per rejection, up to the maximum), unless they change first (a fixed Secret).
REJECTED_BACKOFF_SECONDS = 60.0
REJECTED_BACKOFF_MAX_SECONDS = 900.0
# The keys of a dli.dev/credentials Secret: fixed, so a job names a Secret and nothing more.
ACCESS_KEY, SECRET_KEY, SECURITY_TOKEN = "accessKey", "secretKey", "securityToken"
FIXED_KEYS = {"access_key_key": ACCESS_KEY, "secret_key_key": SECRET_KEY,
              "security_token_key": SECURITY_TOKEN}  # fmt: skip


class ConfigurationError(Exception):
    """The job cannot be sent anywhere yet: no endpoint, project or credentials (user-fixable)."""

    reason: str = Reason.CREDENTIALS
    """The condition reason the job shows."""


class PolicyViolation(ConfigurationError):
    """The admin's policy refuses this target or Secret; the message names the rule."""

    reason = Reason.POLICY_DENIED


class CredentialsRejected(ConfigurationError):
    """DLI rejected these exact credentials lately: nothing is sent with them until they change
    or the backoff passed, so many jobs sharing a bad key never lock it at the gateway."""

    reason = Reason.AUTHENTICATION_FAILED


@dataclass
class Rejection:
    """DLI's last rejection of one credentials source (its fingerprint, never the values)."""

    fingerprint: str
    until: float
    failures: int
    message: str


def rejected(last: Rejection | None, credentials: Credentials, message: str) -> Rejection:
    """The rejection after DLI answered ``credentials`` with an authentication error."""
    fingerprint = _fingerprint(credentials)
    failures = last.failures + 1 if last and last.fingerprint == fingerprint else 1
    backoff = min(REJECTED_BACKOFF_MAX_SECONDS, REJECTED_BACKOFF_SECONDS * 2 ** (failures - 1))
    return Rejection(fingerprint, time.monotonic() + backoff, failures, message)


def check(rejection: Rejection | None, credentials: Credentials) -> None:
    """Raise CredentialsRejected while ``credentials`` are the ones DLI rejected lately."""
    if rejection is None:
        return
    left = rejection.until - time.monotonic()
    if rejection.fingerprint != _fingerprint(credentials) or left <= 0:
        return  # new credentials (or time to try again): the next call says
    raise CredentialsRejected(
        f"DLI rejected these credentials ({rejection.message}); nothing is sent with them "
        f"for {left:.0f}s more, or until they change"
    )


def secret_name(ref: SecretRef | None) -> str | None:
    """The Secret a job names; free key names are refused (the keys are fixed by the type)."""
    if ref is None:
        return None
    for name, fixed in FIXED_KEYS.items():
        given = getattr(ref, name)
        if given != fixed:
            spelled = SecretRef.model_fields[name].alias or name
            raise PolicyViolation(
                f"refused: spec.credentialsSecretRef.{spelled} is {given!r}; key names are fixed "
                f"({ACCESS_KEY}, {SECRET_KEY}, {SECURITY_TOKEN}) in a {CREDENTIALS_TYPE} Secret, "
                "so no other value of a Secret is ever sent (docs/security.md)"
            )
    return ref.name


def from_secret(secret: Secret | None, where: str) -> Credentials:
    """The credentials in a job's Secret (``where`` names it), once it is of the right type."""
    if secret is None:
        raise ConfigurationError(f"{where} (spec.credentialsSecretRef) does not exist")
    if secret.type != CREDENTIALS_TYPE:
        raise PolicyViolation(
            f"refused: {where} is of type {secret.type}, not {CREDENTIALS_TYPE}; only a "
            f"Secret of that type is ever sent to DLI (docs/security.md)"
        )
    values = {key: _text(secret, key, where) for key in (ACCESS_KEY, SECRET_KEY)}
    for key, value in values.items():
        if not value:
            raise ConfigurationError(f"{where} has no key {key!r}")
    token = _text(secret, SECURITY_TOKEN, where) or None
    return Credentials(values[ACCESS_KEY], values[SECRET_KEY], token)


async def default_credentials(provider: CredentialsProvider | None) -> Credentials:
    """The operator's own credentials, from its identity provider (``identity``)."""
    if provider is None:
        raise ConfigurationError(
            "no DLI credentials: set spec.credentialsSecretRef, or give the operator "
            "DLI_OPERATOR_DLI__ACCESS_KEY and DLI_OPERATOR_DLI__SECRET_KEY, or an identity "
            "(DLI_OPERATOR_IDENTITY__SOURCE)"
        )
    try:
        return await provider.get()
    except DliError as exc:
        raise ConfigurationError(
            f"the operator's credentials from {provider.description} are unavailable: {exc}"
        ) from exc


def identity(
    settings: Settings, transport: httpx.AsyncBaseTransport | None
) -> CredentialsProvider | None:
    """The operator's own credentials provider, per ``DLI_OPERATOR_IDENTITY__SOURCE``."""
    cfg, ident = settings.dli, settings.identity
    refresh = {"refresh_before_seconds": ident.refresh_before_seconds, "transport": transport}
    match ident.source:
        case "file":
            return FileCredentials(ident.credentials_dir)
        case "oidc":
            iam = checked_endpoint(ident.iam_endpoint, allow_insecure=cfg.allow_insecure_endpoint)
            return OidcCredentials(
                iam_endpoint=iam,
                idp_id=ident.idp_id,
                token_file=ident.token_file,
                duration_seconds=ident.duration_seconds,
                **refresh,
            )
        case "metadata":
            return MetadataCredentials(endpoint=ident.metadata_endpoint, **refresh)
    if not (cfg.access_key and cfg.secret_key):
        return None
    token = cfg.security_token.get_secret_value() if cfg.security_token else None
    keys = Credentials(cfg.access_key.get_secret_value(), cfg.secret_key.get_secret_value(), token)
    return StaticCredentials(keys)


def _fingerprint(credentials: Credentials) -> str:
    """Tells two sets of credentials apart without keeping their values."""
    raw = "\0".join(
        (credentials.access_key, credentials.secret_key, credentials.security_token or "")
    )
    return hashlib.sha256(raw.encode()).hexdigest()


def _text(secret: Secret, key: str, where: str) -> str:
    """One value of the Secret as text; only the keys used are decoded (issue 10, item 10)."""
    raw = secret.data.get(key)
    if raw is None:
        return ""
    try:
        return raw.decode("utf-8").strip()
    except UnicodeDecodeError:
        raise ConfigurationError(f"{where}: the value of {key!r} is not UTF-8 text") from None
