"""The small objects nested in a DliBatchJob spec: packages, package groups, credentials."""

from __future__ import annotations

from enum import StrEnum
from typing import Literal

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


class SecretRef(CamelModel):
    """A Secret in the job's namespace holding DLI credentials (AK/SK, optional token)."""

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
    access_key_key: str = Field(
        "accessKey", max_length=253, pattern=r"^[-._a-zA-Z0-9]+$", description="Key of the AK."
    )
    secret_key_key: str = Field(
        "secretKey", max_length=253, pattern=r"^[-._a-zA-Z0-9]+$", description="Key of the SK."
    )
    security_token_key: str = Field(
        "securityToken",
        max_length=253,
        pattern=r"^[-._a-zA-Z0-9]+$",
        description="Key of the security token of temporary credentials; used if present.",
    )
