"""The ScheduledDliBatchJob resource: a DliBatchJob template run on a cron schedule.

CronJob semantics (batch/v1), with DliBatchJobs as children named after their scheduled time.
``jobTemplate.spec`` IS ``DliBatchJobSpec``: the CRD schema, bounds and CEL rules of the template
are generated from that model (``resources/crd.py``), so a template the API server accepts makes
a child it accepts.

What the API server checks at ``kubectl apply`` (CEL on the fields, messages naming them):
``schedule`` has the shape of five cron fields with values in range, or a macro; ``timeZone`` is
a name the API server's own time zone database knows (CEL's ``getHours(zone)`` loads it). What
only the operator finds (condition ``Stalled``, reason ``InvalidSchedule``): a date that never
occurs (``0 0 30 2 *``), or a zone the operator's tzdata lacks but the API server's has.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from typing import Annotated, Any

from pydantic import AwareDatetime, Field, StringConstraints

from dli_operator.resources.base import TEXT_MAX, CamelModel, model_patch, rule, rules
from dli_operator.resources.batchjob import DliBatchJobSpec, ObjectMeta
from dli_operator.resources.status import Condition, ConditionType

SCHEDULE_MAX = 128
ZONE_MAX = 64
METADATA_ENTRIES_MAX = 64
ACTIVE_MAX = 100
HISTORY_LIMIT_MAX = 100
MONTHS = "JAN|FEB|MAR|APR|MAY|JUN|JUL|AUG|SEP|OCT|NOV|DEC"
DAYS = "SUN|MON|TUE|WED|THU|FRI|SAT"


def _cron_field(value: str) -> str:
    """A cron field as an RE2 regex: a list of ``*`` or values and ranges, each with a step."""
    item = f"([*]|({value})(-({value}))?)(/[0-9]{{1,2}})?"
    return f"{item}(,{item})*"


# Five fields with values in range (as robfig/cron, batch/v1 CronJob's parser, accepts them),
# or one of the macros; case-insensitive like both.
CRON_FIELDS = [
    "[0-5]?[0-9]",
    "[01]?[0-9]|2[0-3]",
    "0?[1-9]|[12][0-9]|3[01]",
    f"0?[1-9]|1[0-2]|{MONTHS}",
    f"[0-7]|{DAYS}",
]
CRON_PATTERN = (
    "(?i)^("
    + "[ \\t]+".join(f"({_cron_field(v)})" for v in CRON_FIELDS)
    + ")$|^@(yearly|annually|monthly|weekly|daily|midnight|hourly)$"
)
SCHEDULE_MESSAGE = (
    "spec.schedule: must be five cron fields (minute hour day-of-month month day-of-week, "
    "e.g. '0 2 * * *') or @yearly, @monthly, @weekly, @daily or @hourly; "
    "a time zone goes in spec.timeZone"
)
# Letters first: no offsets (+02:00), no empty name, no 'Local' (the operator's own zone).
ZONE_SHAPE = "^[A-Za-z][A-Za-z0-9_+-]*(/[A-Za-z0-9_+-]+)*$"
# CEL loads the zone from the API server's tz database; an unknown one fails the rule.
ZONE_KNOWN = "timestamp('2000-06-01T00:00:00Z').getFullYear(self) == 2000"
ZONE_MESSAGE = "spec.timeZone: must be an IANA time zone name such as Europe/Paris or Etc/UTC"


class ConcurrencyPolicy(StrEnum):
    ALLOW = "Allow"
    FORBID = "Forbid"
    REPLACE = "Replace"


class JobTemplateMetadata(CamelModel):
    """Labels and annotations every child DliBatchJob gets."""

    labels: dict[str, Annotated[str, StringConstraints(max_length=63)]] | None = Field(
        None, max_length=METADATA_ENTRIES_MAX, description="Labels of each child DliBatchJob."
    )
    annotations: dict[str, Annotated[str, StringConstraints(max_length=TEXT_MAX)]] | None = Field(
        None,
        max_length=METADATA_ENTRIES_MAX,
        description="Annotations of each child DliBatchJob.",
    )


class DliBatchJobTemplate(CamelModel):
    """The DliBatchJob created at each scheduled time."""

    metadata: JobTemplateMetadata | None = Field(
        None, description="Labels and annotations of each child."
    )
    spec: DliBatchJobSpec = Field(description="The DliBatchJob spec, as in a DliBatchJob.")


class ScheduledDliBatchJobSpec(CamelModel):
    """Run a DliBatchJob on a cron schedule (batch/v1 CronJob semantics)."""

    schedule: str = Field(
        max_length=SCHEDULE_MAX,
        description="Cron schedule: five fields (minute hour day-of-month month day-of-week) "
        "or @yearly, @monthly, @weekly, @daily, @hourly. Read in spec.timeZone.",
        json_schema_extra=rules(rule(f"self.matches('{CRON_PATTERN}')", SCHEDULE_MESSAGE)),
    )
    time_zone: str | None = Field(
        None,
        min_length=1,
        max_length=ZONE_MAX,
        description="IANA time zone of the schedule, e.g. Asia/Shanghai; default UTC. "
        "Daylight saving follows cron: a skipped time runs just after the jump, a repeated "
        "time runs once.",
        json_schema_extra=rules(
            rule(f"self.matches('{ZONE_SHAPE}') && self != 'Local'", ZONE_MESSAGE),
            rule(ZONE_KNOWN, ZONE_MESSAGE),
        ),
    )
    concurrency_policy: ConcurrencyPolicy = Field(
        ConcurrencyPolicy.ALLOW,
        description="When a run is due while another is active: Allow (default) runs both, "
        "Forbid skips the new one, Replace deletes the active one (cancelling its DLI job) "
        "and starts the new one.",
    )
    starting_deadline_seconds: int | None = Field(
        None,
        ge=0,
        description="A run missed (operator down) is started late only within this many "
        "seconds of its time; at most one missed run is caught up. Unset: no deadline.",
    )
    suspend: bool = Field(
        False, description="true starts no new runs; running ones go on (as for a CronJob)."
    )
    successful_jobs_history_limit: int = Field(
        3, ge=0, le=HISTORY_LIMIT_MAX, description="Succeeded children kept (default 3)."
    )
    failed_jobs_history_limit: int = Field(
        1,
        ge=0,
        le=HISTORY_LIMIT_MAX,
        description="Failed or cancelled children kept (default 1).",
    )
    job_template: DliBatchJobTemplate = Field(description="The DliBatchJob to create each time.")


class JobReference(CamelModel):
    """A child DliBatchJob."""

    name: str = Field(max_length=253, description="Name of the DliBatchJob.")
    uid: str | None = Field(None, max_length=64, description="Its uid.")


class ScheduledDliBatchJobStatus(CamelModel):
    """Observed state of the schedule, written by the operator through the status subresource."""

    last_schedule_time: AwareDatetime | None = Field(
        None, description="The scheduled time of the newest child."
    )
    last_successful_time: AwareDatetime | None = Field(
        None, description="When the newest succeeded child finished."
    )
    next_schedule_time: AwareDatetime | None = Field(
        None, description="The next scheduled time (none while suspended)."
    )
    active: list[JobReference] = Field(
        default_factory=list,
        max_length=ACTIVE_MAX,
        description="Children that have not finished.",
    )
    observed_generation: int | None = Field(
        None, ge=0, description="metadata.generation the operator last acted on."
    )
    conditions: list[Condition] = Field(
        default_factory=list,
        max_length=len(ConditionType),
        description="Ready, Reconciling (a run is active) and Stalled (the last run failed, or "
        "the schedule cannot be used), as kstatus reads them.",
        json_schema_extra={
            "x-kubernetes-list-type": "map",
            "x-kubernetes-list-map-keys": ["type"],
        },
    )

    def to_patch(self, since: ScheduledDliBatchJobStatus) -> dict[str, Any]:
        """What changed since ``since``, as a merge patch (``base.model_patch``)."""
        return model_patch(self, since)


class ScheduledDliBatchJob(CamelModel):
    """A whole ScheduledDliBatchJob object as kopf hands it over."""

    api_version: str = "dli.dev/v1alpha1"
    kind: str = "ScheduledDliBatchJob"
    metadata: ObjectMeta
    spec: ScheduledDliBatchJobSpec
    status: ScheduledDliBatchJobStatus = Field(default_factory=ScheduledDliBatchJobStatus)

    @classmethod
    def from_body(cls, body: Mapping[str, Any]) -> ScheduledDliBatchJob:
        """Parse kopf's body; raises pydantic's ValidationError if it is malformed."""
        return cls.model_validate({k: body[k] for k in body})
