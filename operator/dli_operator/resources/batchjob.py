"""The DliBatchJob resource as types, parsed once from kopf's body (no raw ``spec[...]`` elsewhere).

Job fields are the DLI create-batch request (dli_02_0124) in Kubernetes spelling; they are
immutable once created. Operator fields (``OPERATOR_FIELDS``) steer the operator and stay mutable.
Bounds and CEL rules sit on the fields: ``resources/crd.py`` turns these models into the CRD.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, StringConstraints
from pydantic.alias_generators import to_camel

from dli_operator.resources.base import (
    SHORT_TEXT_MAX,
    TEXT_MAX,
    CamelModel,
    NonEmpty,
    PackagePath,
    matches,
    rule,
    rules,
)
from dli_operator.resources.parts import (
    ITEMS_MAX,
    DeletionPolicy,
    Feature,
    Group,
    Resource,
    SecretRef,
)
from dli_operator.resources.status import (
    ATTEMPTS_MAX,
    FINAL_PHASES,
    LOG_LINES_MAX,
    Attempt,
    Condition,
    ConditionStatus,
    ConditionType,
    DliBatchJobStatus,
    Phase,
    Submission,
)

__all__ = [
    "ATTEMPTS_MAX",
    "FINAL_PHASES",
    "LOG_LINES_MAX",
    "MAX_RETRY_TIMES_DEFAULT",
    "OPERATOR_FIELDS",
    "Attempt",
    "Condition",
    "ConditionStatus",
    "ConditionType",
    "DeletionPolicy",
    "DliBatchJob",
    "DliBatchJobSpec",
    "DliBatchJobStatus",
    "Feature",
    "Group",
    "ObjectMeta",
    "Phase",
    "Resource",
    "SecretRef",
    "Submission",
]

ARGS_MAX = 256
CONF_MAX = 256
MAX_RETRY_TIMES_DEFAULT = 20  # dli_02_0124: "The maximum value is 100, and the default value is 20"
# DLI queue names: letters, digits and _, not all digits, not starting with _ (dli_02_0194).
QUEUE_RULE = "self.matches('^[A-Za-z0-9_]+$') && !self.startsWith('_') && !self.matches('^[0-9]+$')"
# Spark 3.3 and later: OBS paths only, no resources/groups (dli_02_0124 notes).
SPARK_33_UP = r"^(3\\.([3-9]|[1-9][0-9])|[4-9]|[1-9][0-9])\\."
OPERATOR_FIELDS = frozenset(
    {
        "credentialsSecretRef",
        "projectId",
        "region",
        "endpoint",
        "deletionPolicy",
        "ttlSecondsAfterFinished",
        "activeDeadlineSeconds",
        "suspend",
    }
)

Items = Annotated[list[PackagePath], Field(max_length=ITEMS_MAX)]
Memory = Annotated[str, StringConstraints(max_length=32)]


def _memory(field: str) -> Any:
    return Field(
        None,
        description=f"{field.capitalize()} memory with a unit, e.g. 2G or 2048M; overrides scType.",
        json_schema_extra=matches(
            f"{field}Memory",
            "^[1-9][0-9]*[kKmMgGtT][bB]?$",
            "must carry a unit such as 2G or 2048M",
        ),
    )


class DliBatchJobSpec(CamelModel):
    """One DLI Spark batch job (POST /v2.0/{project_id}/batches, dli_02_0124).

    Job fields are immutable: to run a changed job, create a new DliBatchJob.
    """

    model_config = ConfigDict(
        json_schema_extra=rules(
            rule(
                "has(self.queue) || has(self.clusterName)",
                "spec.queue: required (or the legacy spec.clusterName)",
            ),
            rule(
                "!(has(self.queue) && has(self.clusterName))",
                "spec.queue and spec.clusterName cannot coexist: set only spec.queue",
            ),
            rule(
                "(has(self.className) && self.className != '') || "
                "(has(self.file) && self.file.lowerAscii().endsWith('.py'))",
                "spec.className: required unless spec.file is a Python file (.py)",
            ),
            rule(
                "!has(self.image) || (has(self.feature) && self.feature == 'custom')",
                "spec.image: only allowed with spec.feature: custom",
            ),
            rule(
                "!has(self.feature) || self.feature != 'custom' || has(self.image)",
                "spec.image: required when spec.feature is custom",
            ),
            rule(
                f"!has(self.sparkVersion) || !self.sparkVersion.matches('{SPARK_33_UP}') || "
                "(!has(self.resources) && !has(self.groups))",
                "spec.resources, spec.groups: not supported by Spark 3.3 and later; "
                "use obs:// paths in spec.jars, spec.pyFiles or spec.files",
            ),
            rule(
                f"!has(self.sparkVersion) || !self.sparkVersion.matches('{SPARK_33_UP}') || "
                "!has(self.file) || self.file.startsWith('obs://')",
                "spec.file: Spark 3.3 and later accept only an obs:// path",
            ),
            rule(
                "!(has(self.region) && has(self.endpoint))",
                "spec.region and spec.endpoint cannot coexist: the endpoint already names it",
            ),
        )
    )

    file: PackagePath = Field(
        description="Main package: a DLI package name (group/name.jar) or obs://bucket/path."
    )
    class_name: str | None = Field(
        None,
        max_length=SHORT_TEXT_MAX,
        description="Main class (Java/Scala). Required unless file is a Python file (.py).",
    )
    queue: str | None = Field(
        None,
        max_length=128,
        description="DLI queue (general-purpose). Set exactly one of queue and clusterName.",
        json_schema_extra=rules(rule(QUEUE_RULE, "spec.queue: must be a DLI queue name")),
    )
    cluster_name: str | None = Field(
        None,
        max_length=128,
        description="Legacy name of the queue; prefer queue. Cannot coexist with queue.",
        json_schema_extra=rules(rule(QUEUE_RULE, "spec.clusterName: must be a DLI queue name")),
    )
    args: list[Annotated[str, StringConstraints(max_length=TEXT_MAX)]] | None = Field(
        None, max_length=ARGS_MAX, description="Arguments of the main class."
    )
    sc_type: Literal["A", "B", "C"] | None = Field(
        None,
        description="Resource preset: A (8 vCPU/32 GB, default), B (16/64) or C (32/128).",
    )
    jars: Items | None = Field(None, description="JAR packages: DLI names or obs:// paths.")
    py_files: Items | None = Field(None, description="Python packages: names or obs:// paths.")
    files: Items | None = Field(None, description="Other files: DLI names or obs:// paths.")
    modules: list[NonEmpty] | None = Field(
        None,
        max_length=ITEMS_MAX,
        description="DLI system modules, e.g. sys.datasource.hbase, sys.datasource.rds.",
    )
    resources: list[Resource] | None = Field(
        None, max_length=ITEMS_MAX, description="Packages by name and type (not on Spark 3.3+)."
    )
    groups: list[Group] | None = Field(
        None, max_length=ITEMS_MAX, description="Package groups (not on Spark 3.3+)."
    )
    conf: dict[str, Annotated[str, StringConstraints(max_length=TEXT_MAX)]] | None = Field(
        None,
        max_length=CONF_MAX,
        description="Spark configuration, e.g. spark.dli.metaAccess.enable: 'true'.",
        json_schema_extra=rules(
            rule(
                "self.all(k, k.size() <= 256 && k.matches('^\\\\S+$'))",
                "spec.conf: keys are Spark property names without spaces, at most 256 characters",
            )
        ),
    )
    name: str | None = Field(
        None,
        min_length=1,
        max_length=128,
        description="Job name shown in DLI (at most 128 characters); metadata.name if unset.",
    )
    driver_memory: Memory | None = _memory("driver")
    driver_cores: int | None = Field(None, ge=1, description="Driver CPU cores; overrides scType.")
    executor_memory: Memory | None = _memory("executor")
    executor_cores: int | None = Field(
        None, ge=1, description="CPU cores per executor; overrides scType."
    )
    num_executors: int | None = Field(
        None, ge=1, description="Number of executors; overrides scType."
    )
    obs_bucket: str | None = Field(
        None,
        max_length=63,
        description="OBS bucket where DLI saves the job.",
        json_schema_extra=matches(
            "obsBucket",
            "^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$",
            "must be an OBS bucket name (3-63 lowercase letters, digits, - and .)",
        ),
    )
    auto_recovery: bool | None = Field(
        None,
        description="Resubmit the job when it ends dead (the operator does this, not DLI).",
    )
    max_retry_times: int | None = Field(
        None,
        ge=0,
        le=100,
        description=f"Attempts after the first with autoRecovery (0-100, default "
        f"{MAX_RETRY_TIMES_DEFAULT}).",
    )
    feature: Feature | None = Field(
        None, description="Spark image: basic (DLI's), custom (needs image) or ai."
    )
    spark_version: str | None = Field(
        None,
        max_length=32,
        description="Spark version, e.g. 3.3.1 (DLI's default is 2.3.2).",
        json_schema_extra=matches(
            "sparkVersion", "^[0-9]+(\\\\.[0-9]+){1,2}$", "must be a version such as 3.3.1"
        ),
    )
    image: str | None = Field(
        None,
        max_length=SHORT_TEXT_MAX,
        description="Custom image organization/image:version; only with feature: custom.",
        json_schema_extra=matches(
            "image",
            "^[a-z0-9][a-z0-9._-]*/[a-z0-9][a-z0-9._/-]*:[A-Za-z0-9_][A-Za-z0-9._-]*$",
            "must be organization/image:version",
        ),
    )
    catalog_name: Literal["dli"] | None = Field(
        None, description="Set to dli to access DLI metadata."
    )
    execution_agency_urn: str | None = Field(
        None, min_length=1, max_length=SHORT_TEXT_MAX, description="IAM agency the job runs as."
    )
    credentials_secret_ref: SecretRef | None = Field(
        None, description="Credentials for this job; default: the operator's own."
    )
    project_id: str | None = Field(
        None,
        max_length=64,
        description="Huawei Cloud project ID; default: the operator's.",
        json_schema_extra=matches(
            "projectId", "^[A-Za-z0-9_-]+$", "must be a project ID (letters, digits, - and _)"
        ),
    )
    region: str | None = Field(
        None,
        max_length=64,
        description="Region, e.g. cn-north-4; selects the DLI endpoint. Not with endpoint.",
        json_schema_extra=matches(
            "region", "^[a-z]{2,}(-[a-z0-9]+)+$", "must be a region such as cn-north-4"
        ),
    )
    endpoint: str | None = Field(
        None,
        max_length=SHORT_TEXT_MAX,
        description="DLI endpoint URL override, e.g. https://dli.cn-north-4.myhuaweicloud.com.",
        json_schema_extra=matches(
            "endpoint", "^https?://[^\\\\s/]+(/\\\\S*)?$", "must be an http(s) URL"
        ),
    )
    deletion_policy: DeletionPolicy = Field(
        DeletionPolicy.CANCEL,
        description="On delete: Cancel (default) cancels a running job; Orphan leaves it.",
    )
    ttl_seconds_after_finished: int | None = Field(
        None, ge=0, description="Delete the DliBatchJob this long after it finished."
    )
    active_deadline_seconds: int | None = Field(
        None, ge=1, description="Cancel and fail (DeadlineExceeded) after this long."
    )
    suspend: bool = Field(False, description="true cancels the running attempt and holds.")


class ObjectMeta(BaseModel):
    """The metadata the operator reads; everything else is ignored."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="ignore")

    name: str
    # Read by the GitOps TTL warning and by schedules (issue 14).
    labels: dict[str, str] = Field(default_factory=dict)
    annotations: dict[str, str] = Field(default_factory=dict)
    creation_timestamp: AwareDatetime | None = None
    namespace: str | None = None
    uid: str | None = None
    generation: int | None = None
    resource_version: str | None = None
    deletion_timestamp: AwareDatetime | None = None

    @property
    def key(self) -> str:
        """``namespace/name``: the work queue's key (engine.cache.key_of, on a raw body)."""
        return f"{self.namespace or ''}/{self.name}"


class DliBatchJob(CamelModel):
    """A whole DliBatchJob object as kopf hands it over."""

    api_version: str = "dli.dev/v1alpha1"
    kind: str = "DliBatchJob"
    metadata: ObjectMeta
    spec: DliBatchJobSpec
    status: DliBatchJobStatus = Field(default_factory=DliBatchJobStatus)

    @classmethod
    def from_body(cls, body: Mapping[str, Any]) -> DliBatchJob:
        """Parse kopf's body; raises pydantic's ValidationError if it is malformed."""
        return cls.model_validate({k: body[k] for k in body})
