"""The DliBatchJob CustomResourceDefinition, generated from the models so the two cannot drift.

pydantic's JSON schema is close to a structural OpenAPI schema; this module closes the gap:
``$ref`` inlined, ``X | None`` as plain ``X`` (absent, not null), no titles, no defaults (the
operator applies them, so GitOps tools see no server-written spec), no ``additionalProperties:
false`` (structural schemas prune instead). It adds the immutability rules for the job fields,
the names, the status subresource and the printer columns. ``crds/`` holds its output
(``dli-operator crd``); a unit test compares the two.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import GenerateJsonSchema, JsonSchemaValue
from pydantic_core import core_schema

from dli_operator.resources.batchjob import OPERATOR_FIELDS, DliBatchJobSpec, DliBatchJobStatus

GROUP = "dli.dev"
VERSION = "v1alpha1"
KIND = "DliBatchJob"
PLURAL = "dlibatchjobs"
IMMUTABLE_MESSAGE = "spec.{field} is immutable: create a new DliBatchJob to run a changed job"

PRINTER_COLUMNS: list[dict[str, Any]] = [
    {"name": "Phase", "type": "string", "jsonPath": ".status.phase"},
    {"name": "State", "type": "string", "jsonPath": ".status.state", "description": "DLI state"},
    {"name": "App-ID", "type": "string", "jsonPath": ".status.appId"},
    {"name": "Queue", "type": "string", "jsonPath": ".spec.queue"},
    {"name": "Retries", "type": "integer", "jsonPath": ".status.retries"},
    {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
    {"name": "Batch-ID", "type": "string", "jsonPath": ".status.batchId", "priority": 1},
    {"name": "Duration", "type": "string", "jsonPath": ".status.duration", "priority": 1},
]


class _Structural(GenerateJsonSchema):
    """pydantic's generator, minus nullability and defaults, which CRDs express differently."""

    def nullable_schema(self, schema: core_schema.NullableSchema) -> JsonSchemaValue:
        return self.generate_inner(schema["schema"])

    def default_schema(self, schema: core_schema.WithDefaultSchema) -> JsonSchemaValue:
        return self.generate_inner(schema["schema"])


def job_fields() -> list[str]:
    """The spec fields that are the DLI request, in model order: immutable after creation."""
    names = [f.alias or n for n, f in DliBatchJobSpec.model_fields.items()]
    return [name for name in names if name not in OPERATOR_FIELDS]


def openapi_schema(model: type[BaseModel]) -> dict[str, Any]:
    """A model's structural OpenAPI v3 schema (camelCase property names)."""
    raw = model.model_json_schema(by_alias=True, schema_generator=_Structural)
    defs = raw.pop("$defs", {})
    return _clean(raw, defs)


def _clean(node: dict[str, Any], defs: dict[str, Any]) -> dict[str, Any]:
    if "$ref" in node:
        target = _clean(defs[node["$ref"].rsplit("/", 1)[-1]], defs)
        siblings = _clean({k: v for k, v in node.items() if k != "$ref"}, defs)
        rules = target.get("x-kubernetes-validations", []) + siblings.get(
            "x-kubernetes-validations", []
        )
        node = {**target, **siblings} | ({"x-kubernetes-validations": rules} if rules else {})
        return node
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key == "title" or (key == "additionalProperties" and value is False):
            continue
        if key == "const":  # a one-value Literal; OpenAPI v3.0 has no const
            out["enum"] = [value]
        elif key == "properties":
            out[key] = {name: _clean(sub, defs) for name, sub in value.items()}
        elif key in ("items", "additionalProperties") and isinstance(value, dict):
            out[key] = _clean(value, defs)
        else:
            out[key] = value
    return out


def spec_schema() -> dict[str, Any]:
    """The spec schema with the job fields made immutable.

    ``self == oldSelf`` on the field catches a changed value (it only runs when the field is
    set before and after); a rule on spec catches adding or removing it. A single optional
    comparison on spec (``self.?f == oldSelf.?f``) reads better but blows the cost budget.
    """
    schema = openapi_schema(DliBatchJobSpec)
    presence = []
    for field in job_fields():
        message = IMMUTABLE_MESSAGE.format(field=field)
        prop = schema["properties"][field]
        prop["x-kubernetes-validations"] = [
            *prop.get("x-kubernetes-validations", []),
            {"rule": "self == oldSelf", "message": message},
        ]
        presence.append({"rule": f"has(self.{field}) == has(oldSelf.{field})", "message": message})
    schema["x-kubernetes-validations"] = schema.get("x-kubernetes-validations", []) + presence
    return schema


def root_schema() -> dict[str, Any]:
    return {
        "type": "object",
        "description": "A Huawei Cloud DLI Spark batch job run by dli-operator.",
        "required": ["spec"],
        "properties": {
            "apiVersion": {"type": "string", "description": "dli.dev/v1alpha1"},
            "kind": {"type": "string", "description": KIND},
            "metadata": {"type": "object"},
            "spec": spec_schema(),
            "status": openapi_schema(DliBatchJobStatus),
        },
    }


def build_crd() -> dict[str, Any]:
    """The CustomResourceDefinition object, ready to dump as YAML."""
    return envelope(KIND, PLURAL, ["dlijob", "dlijobs"], PRINTER_COLUMNS, root_schema())


def envelope(
    kind: str,
    plural: str,
    short_names: list[str],
    columns: list[dict[str, Any]],
    schema: dict[str, Any],
) -> dict[str, Any]:
    """A CustomResourceDefinition of this group and version around ``schema``."""
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{plural}.{GROUP}"},
        "spec": {
            "group": GROUP,
            "scope": "Namespaced",
            "names": {
                "kind": kind,
                "listKind": f"{kind}List",
                "plural": plural,
                "singular": kind.lower(),
                "shortNames": short_names,
                "categories": ["dli"],
            },
            "versions": [
                {
                    "name": VERSION,
                    "served": True,
                    "storage": True,
                    "subresources": {"status": {}},
                    "additionalPrinterColumns": columns,
                    "schema": {"openAPIV3Schema": schema},
                }
            ],
        },
    }


def render_crd(crd: dict[str, Any] | None = None, command: str = "dli-operator crd") -> str:
    """The CRD as the YAML file in ``crds/``, with a header saying where it comes from."""
    import yaml  # a pure serializer; imported here so the models never need it

    header = f"# Generated by `{command}` from operator/dli_operator/resources/; do not edit.\n"
    return header + yaml.safe_dump(crd or build_crd(), sort_keys=False, width=100)
