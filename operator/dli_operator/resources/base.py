"""What every DliBatchJob model shares: camelCase on the wire, strictness, and CEL rule helpers.

The CRD is generated from these models (``resources/crd.py``), so a model's bounds and rules are
the API server's bounds and rules. Models must stay free of I/O (import-linter enforces it).
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, StringConstraints
from pydantic.alias_generators import to_camel

# The API server refuses a CEL rule whose estimated cost is unbounded, and it estimates from
# maxLength/maxItems/maxProperties. Every string, list and map the rules touch carries one.
SHORT_TEXT_MAX = 256
PATH_MAX = 2048  # obs://<bucket ≤63>/<object key ≤1024> with room for DLI package-group names
TEXT_MAX = 4096


class CamelModel(BaseModel):
    """Base of the resource models: Python names in code, Kubernetes camelCase in YAML."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid")


def rule(expression: str, message: str) -> dict[str, str]:
    """One ``x-kubernetes-validations`` entry; the message names the field and the rule."""
    return {"rule": expression, "message": message}


def rules(*entries: dict[str, str]) -> dict[str, Any]:
    """The ``json_schema_extra`` that puts CEL rules next to the field or model they guard."""
    return {"x-kubernetes-validations": list(entries)}


def matches(field: str, pattern: str, message: str) -> dict[str, Any]:
    """A field-level CEL regex rule with its own message (an OpenAPI pattern's is generic)."""
    return rules(rule(f"self.matches('{pattern}')", f"spec.{field}: {message}"))


NonEmpty = Annotated[str, StringConstraints(min_length=1, max_length=SHORT_TEXT_MAX)]
PackagePath = Annotated[str, StringConstraints(min_length=1, max_length=PATH_MAX)]
Text = Annotated[str, StringConstraints(max_length=TEXT_MAX)]


def model_patch(new: BaseModel, old: BaseModel | None) -> dict[str, Any]:
    """``new`` as a merge patch: camelCase, JSON types, no nulls.

    With ``old`` (the stored value) only what changed is kept and a cleared key becomes
    ``None``, which a merge patch turns into a deletion; ``{}`` means nothing to write.
    Re-validating first trims lists the operator appended to in place.
    """
    checked = type(new).model_validate(new.model_dump())
    current = checked.model_dump(by_alias=True, exclude_none=True, mode="json")
    if old is None:
        return current
    return merge_patch(old.model_dump(by_alias=True, exclude_none=True, mode="json"), current)


def merge_patch(old: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
    """The RFC 7386 merge patch that turns ``old`` into ``new``: a key that is gone becomes
    ``None`` at any depth (e.g. ``submission.sentAt`` when a claim is released); lists and
    scalars are replaced whole."""
    patch: dict[str, Any] = {k: None for k in old.keys() - new.keys()}
    for key, value in new.items():
        before = old.get(key)
        if isinstance(value, dict) and isinstance(before, dict):
            inner = merge_patch(before, value)
            if inner:
                patch[key] = inner
        elif before != value:
            patch[key] = value
    return patch
