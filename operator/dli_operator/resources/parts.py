"""The small objects nested in a DliBatchJob spec: packages, package groups, credentials."""

from __future__ import annotations

from enum import StrEnum
from typing import Any, Literal

from pydantic import Field

from dli_operator.resources.base import CamelModel, NonEmpty, PackagePath, rule, rules

ITEMS_MAX = 100  # packages, modules, resources per job; generous for a Spark submission


class Feature(StrEnum):
    """The Spark image family (dli_02_0124 ``feature``).

    An enum, not a Literal: typing treats Literals with the same values in another order as
    equal, so pydantic could reuse dli.models' schema and reorder the generated CRD.
    """

    BASIC = "basic"
    CUSTOM = "custom"
    AI = "ai"


class DeletionPolicy(StrEnum):
    CANCEL = "Cancel"
    ORPHAN = "Orphan"


class Resource(CamelModel):
    """A package uploaded to DLI resource management (dli_02_0124 Table 4)."""

    name: PackagePath = Field(description="Package name, or an obs://bucket/path.")
    type: Literal["jar", "pyFile", "file"] | None = Field(
        None, description="Package type: jar, pyFile or file."
    )


class Group(CamelModel):
    """A DLI package group and the packages used from it (dli_02_0124 Table 5)."""

    name: NonEmpty = Field(description="Package group name.")
    resources: list[Resource] | None = Field(
        None, max_length=ITEMS_MAX, description="Packages of the group."
    )


def _fixed_key(name: str, holds: str) -> Any:
    return Field(
        name,
        max_length=253,
        description=f"Deprecated, always {name}: the key of {holds} in the Secret.",
        json_schema_extra={"enum": [name]},
    )


class SecretRef(CamelModel):
    """A ``dli.dev/credentials`` Secret in the job's namespace: keys ``accessKey``, ``secretKey``
    and optionally ``securityToken``."""

    name: str = Field(
        max_length=253,
        description="Secret name, in the DliBatchJob's namespace.",
        json_schema_extra=rules(
            rule(
                "self.matches('^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$')",
                "spec.credentialsSecretRef.name: must be a Secret name (DNS subdomain)",
            )
        ),
    )
    # Deprecated: the key names are fixed by the Secret type dli.dev/credentials, so a job can
    # name a Secret but never pick which of its values is sent (issue 11, docs/security.md).
    # The schema accepts only the fixed names; the model still parses older objects with other
    # names, which the operator then refuses with a PolicyDenied condition instead of "Malformed".
    access_key_key: str = _fixed_key("accessKey", "the AK")
    secret_key_key: str = _fixed_key("secretKey", "the SK")
    security_token_key: str = _fixed_key(
        "securityToken", "the security token of temporary credentials"
    )
