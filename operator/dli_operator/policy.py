"""The tenancy policy: which DLI target a job may use, with which identity (issue 11).

A job's author chooses the namespace, the Secret name, and optionally a project, region or
endpoint; the admin decides, through ``PolicySettings``, which of those choices are honoured.
The rules, in the order they are checked (each refusal names its setting):

1. The endpoint must be one the operator trusts: the configured one, the official endpoint of an
   allowed region, or one listed explicitly. Otherwise the operator's credentials (or the job's)
   would be handed to whoever runs that host.
2. The operator's default credentials serve only the namespaces the admin chose, and only the
   configured endpoint and project: a job cannot borrow the operator's identity elsewhere.
3. A namespace with a project list may target only those projects.

Pure: no I/O. The runtime reads namespace labels only when a selector needs them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from dli_operator.settings import PolicySettings

ALLOWED_ENDPOINTS = "DLI_OPERATOR_POLICY__ALLOWED_ENDPOINTS"
ALLOWED_REGIONS = "DLI_OPERATOR_POLICY__ALLOWED_REGIONS"
DEFAULT_NAMESPACES = "DLI_OPERATOR_POLICY__DEFAULT_CREDENTIALS_NAMESPACES"
DEFAULT_SELECTOR = "DLI_OPERATOR_POLICY__DEFAULT_CREDENTIALS_NAMESPACE_SELECTOR"
NAMESPACE_PROJECTS = "DLI_OPERATOR_POLICY__NAMESPACE_PROJECTS"
# A spec.endpoint and a spec.region are refused alike: either setting can allow the endpoint.
TRUSTED_ENDPOINTS = f"{ALLOWED_ENDPOINTS} or {ALLOWED_REGIONS}"
DEFAULT_PROJECT = "DLI_OPERATOR_DLI__PROJECT_ID"
DEFAULT_ENDPOINT = "DLI_OPERATOR_DLI__ENDPOINT"
ALL = "*"


@dataclass(frozen=True)
class Refusal:
    """Why a target is refused: the rule (a setting name) and a message for the job's status."""

    rule: str
    message: str


@dataclass(frozen=True)
class Trusted:
    """The operator's own target and the endpoints it may talk to, all normalised."""

    default_endpoint: str | None
    default_project: str | None
    endpoints: frozenset[str]
    """Every endpoint the operator may call."""


def refusal(
    policy: PolicySettings,
    trusted: Trusted,
    *,
    namespace: str,
    labels: Mapping[str, str] | None,
    endpoint: str,
    project: str,
    default_credentials: bool,
) -> Refusal | None:
    """The first rule the target breaks, or None. ``labels`` is None if not needed (not read)."""
    if endpoint not in trusted.endpoints:
        return Refusal(
            TRUSTED_ENDPOINTS,
            f"endpoint {endpoint} is not one the operator trusts; only an admin can allow it",
        )
    if default_credentials:
        denied = _default_credentials_refusal(policy, trusted, namespace, labels, endpoint, project)
        if denied is not None:
            return denied
    projects = policy.namespace_projects.get(namespace, policy.namespace_projects.get(ALL))
    if projects is not None and project not in projects:
        return Refusal(
            NAMESPACE_PROJECTS,
            f"namespace {namespace} may not target project {project}",
        )
    return None


def needs_labels(policy: PolicySettings, namespace: str) -> bool:
    """Whether the selector must be asked (the namespace is not admitted by name)."""
    names = policy.default_credentials_namespaces
    return bool(policy.default_credentials_namespace_selector) and not (
        ALL in names or namespace in names
    )


def _default_credentials_refusal(
    policy: PolicySettings,
    trusted: Trusted,
    namespace: str,
    labels: Mapping[str, str] | None,
    endpoint: str,
    project: str,
) -> Refusal | None:
    names = policy.default_credentials_namespaces
    selector = policy.default_credentials_namespace_selector
    admitted = ALL in names or namespace in names
    if not admitted and selector and labels is not None:
        admitted = selects(selector, labels)
    if not admitted:
        rule = DEFAULT_SELECTOR if selector else DEFAULT_NAMESPACES
        return Refusal(
            rule,
            f"namespace {namespace} may not use the operator's default credentials: set "
            "spec.credentialsSecretRef, or an admin admits the namespace",
        )
    if endpoint != trusted.default_endpoint:
        return Refusal(
            DEFAULT_ENDPOINT,
            f"the operator's default credentials are used only with its own endpoint, not "
            f"{endpoint}: set spec.credentialsSecretRef",
        )
    if project != trusted.default_project:
        return Refusal(
            DEFAULT_PROJECT,
            f"the operator's default credentials are used only with its own project, not "
            f"{project}: set spec.credentialsSecretRef",
        )
    return None


def selects(selector: str, labels: Mapping[str, str]) -> bool:
    """Whether an equality-based label selector (``a=b,c!=d,e,!f``) matches ``labels``."""
    for term in (t.strip() for t in selector.split(",")):
        if not term:
            continue
        if "!=" in term:
            key, value = (part.strip() for part in term.split("!=", 1))
            matched = labels.get(key) != value
        elif "=" in term:
            key, value = (part.strip().lstrip("=") for part in term.split("=", 1))
            matched = labels.get(key.rstrip("=")) == value
        elif term.startswith("!"):
            matched = term[1:].strip() not in labels
        else:
            matched = term in labels
        if not matched:
            return False
    return True
