"""The ScheduledDliBatchJob CustomResourceDefinition, generated like DliBatchJob's (``crd.py``).

``jobTemplate.spec`` is DliBatchJob's spec schema, generated from the same model with the same
bounds and CEL rules; only the messages are moved to where the field sits
(``spec.queue`` -> ``spec.jobTemplate.spec.queue``). The job fields are not immutable in the
template: a changed template is the next run's job.
"""

from __future__ import annotations

import re
from typing import Any

from dli_operator.resources.batchjob import DliBatchJobSpec
from dli_operator.resources.crd import GROUP, VERSION, envelope, openapi_schema
from dli_operator.resources.schedule import ScheduledDliBatchJobSpec, ScheduledDliBatchJobStatus

KIND = "ScheduledDliBatchJob"
PLURAL = "scheduleddlibatchjobs"
SHORT_NAMES = ["dlischedule", "dlischedules"]
TEMPLATE_PATH = "spec.jobTemplate.spec"
COMMAND = f"dli-operator crd {KIND}"
NAME_MAX = 52

# "Next" is a string: kubectl prints a future time of a date column as <invalid>.
PRINTER_COLUMNS: list[dict[str, Any]] = [
    {"name": "Schedule", "type": "string", "jsonPath": ".spec.schedule"},
    {"name": "TimeZone", "type": "string", "jsonPath": ".spec.timeZone"},
    {"name": "Suspend", "type": "boolean", "jsonPath": ".spec.suspend"},
    {"name": "Active", "type": "string", "jsonPath": ".status.active[*].name"},
    {"name": "Last Schedule", "type": "date", "jsonPath": ".status.lastScheduleTime"},
    {"name": "Next", "type": "string", "jsonPath": ".status.nextScheduleTime"},
    {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
]


def template_spec_schema() -> dict[str, Any]:
    """DliBatchJob's spec schema, with its rule messages naming the template's fields."""
    schema: dict[str, Any] = _relocate(openapi_schema(DliBatchJobSpec))
    return schema


def _relocate(node: Any) -> Any:
    if isinstance(node, list):
        return [_relocate(item) for item in node]
    if not isinstance(node, dict):
        return node
    out = {key: _relocate(value) for key, value in node.items()}
    if "message" in out and "rule" in out:
        out["message"] = re.sub(r"\bspec\.", f"{TEMPLATE_PATH}.", out["message"])
    return out


def spec_schema() -> dict[str, Any]:
    schema = openapi_schema(ScheduledDliBatchJobSpec)
    template = schema["properties"]["jobTemplate"]
    template["properties"]["spec"] = {
        **template_spec_schema(),
        "description": "The DliBatchJob spec, exactly as in a DliBatchJob.",
    }
    return schema


def root_schema() -> dict[str, Any]:
    return {
        "type": "object",
        "description": "Runs a DliBatchJob on a cron schedule (batch/v1 CronJob semantics).",
        "required": ["spec"],
        # As for a CronJob: the child names add "-<minutes since the epoch>" (8 digits) and the
        # name is also the value of the children's dli.dev/schedule label (at most 63).
        "x-kubernetes-validations": [
            {
                "rule": f"self.metadata.name.size() <= {NAME_MAX}",
                "message": f"metadata.name: at most {NAME_MAX} characters for a schedule",
            }
        ],
        "properties": {
            "apiVersion": {"type": "string", "description": f"{GROUP}/{VERSION}"},
            "kind": {"type": "string", "description": KIND},
            "metadata": {"type": "object"},
            "spec": spec_schema(),
            "status": openapi_schema(ScheduledDliBatchJobStatus),
        },
    }


def build_crd() -> dict[str, Any]:
    """The CustomResourceDefinition object, ready to dump as YAML."""
    return envelope(KIND, PLURAL, SHORT_NAMES, PRINTER_COLUMNS, root_schema())
