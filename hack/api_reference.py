"""docs/api.md, generated from every CRD in crds/ and the condition reasons in the code.

Every field of every served version: its type, default, validation (OpenAPI and CEL) and
description, then each kind's condition types, and every condition reason with its docstring.
A new kind needs nothing here: it is read from crds/ like the first. The CRDs carry no defaults
(the operator applies them, so stored objects stay as written); the spec's defaults are read
from the pydantic model named like the kind in ``dli_operator.resources``, when there is one.
"""

from __future__ import annotations

import ast
import importlib
import json
import pkgutil
import types
import typing
from collections.abc import Iterator
from enum import Enum
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel

import dli_operator.resources

REPO = Path(__file__).resolve().parents[1]
CRDS = REPO / "crds"
# Where the condition reasons are defined: (module file, class of string constants).
REASONS = [(REPO / "operator" / "dli_operator" / "outcomes.py", "Reason")]
HEADER = """\
# API reference

Generated from the CRDs in `crds/` and the reasons in the code by `make docs`
(`hack/api_reference.py`); `tests/unit/test_generated.py` fails when it is stale.
`kubectl explain` shows the same descriptions on a cluster. How versions change:
[releasing.md](releasing.md#crd-versions).
"""
VALIDATION_KEYS = {
    "enum": "one of {}",
    "pattern": "matches `{}`",
    "format": "format {}",
    "minimum": "≥ {}",
    "maximum": "≤ {}",
    "minLength": "length ≥ {}",
    "maxLength": "length ≤ {}",
    "minItems": "items ≥ {}",
    "maxItems": "items ≤ {}",
    "maxProperties": "entries ≤ {}",
}


def api_reference() -> str:
    parts = [HEADER]
    for path in sorted(CRDS.glob("*.yaml")):
        for crd in yaml.safe_load_all(path.read_text()):
            if crd and crd.get("kind") == "CustomResourceDefinition":
                parts += [section(crd, version) for version in crd["spec"]["versions"]]
    parts.append(reasons_section())
    return "\n".join(parts)


def section(crd: dict[str, Any], version: dict[str, Any]) -> str:
    spec, names = crd["spec"], crd["spec"]["names"]
    schema = version["schema"]["openAPIV3Schema"]
    short = ", ".join(f"`{n}`" for n in names.get("shortNames", []))
    lines = [
        f"## {names['kind']} ({spec['group']}/{version['name']})",
        "",
        " ".join(schema.get("description", "").split()),
        "",
        f"Scope {spec['scope']}; plural `{names['plural']}`"
        + (f"; short names {short}" if short else "")
        + f"; served: {version['served']}, storage: {version['storage']}.",
        "",
    ]
    defaults = operator_defaults(names["kind"])
    for part in ("spec", "status"):
        if node := schema.get("properties", {}).get(part):
            table = fields_table(node, defaults if part == "spec" else {})
            lines += [f"### {names['kind']}.{part}", "", *object_rules(node), *table]
    lines += conditions(names["kind"], schema)
    return "\n".join(lines)


def object_rules(node: dict[str, Any]) -> list[str]:
    """Rules on the object as a whole (CEL across fields), before its fields."""
    rules = node.get("x-kubernetes-validations", [])
    if not rules:
        return []
    return ["Rules across fields:", "", *(f"- {cel(rule)}" for rule in rules), ""]


def fields_table(node: dict[str, Any], defaults: dict[str, Any]) -> list[str]:
    rows = ["| Field | Type | Default | Validation | Description |", "|---|---|---|---|---|"]
    for path, field, required in walk(node):
        default = ""
        if "default" in field:
            default = f"`{json.dumps(field['default'])}`"
        elif path in defaults:
            default = f"`{json.dumps(defaults[path])}`"
        checks = validation(field, required)
        text = " ".join(field.get("description", "").split()).replace("|", "\\|")
        rows.append(f"| `{path}` | {type_of(field)} | {default} | {checks} | {text} |")
    return [*rows, ""]


def walk(node: dict[str, Any], prefix: str = "") -> Iterator[tuple[str, dict[str, Any], bool]]:
    """(path, schema, required) for every field below ``node``, depth first, in schema order."""
    required = set(node.get("required", []))
    for name, field in node.get("properties", {}).items():
        path = f"{prefix}{name}"
        yield path, field, name in required
        if field.get("type") == "array" and "properties" in field.get("items", {}):
            yield from walk(field["items"], f"{path}[].")
        elif "properties" in field:
            yield from walk(field, f"{path}.")


def type_of(field: dict[str, Any]) -> str:
    kind = field.get("type", "any")
    if kind == "array":
        return f"[]{type_of(field.get('items', {}))}"
    if kind == "object" and isinstance(field.get("additionalProperties"), dict):
        return f"map[string]{type_of(field['additionalProperties'])}"
    if field.get("x-kubernetes-int-or-string"):
        return "int-or-string"
    return str(kind)


def validation(field: dict[str, Any], required: bool) -> str:
    found = ["required"] if required else []
    for key, shape in VALIDATION_KEYS.items():
        if key in field:
            value = field[key]
            shown = ", ".join(f"`{v}`" for v in value) if key == "enum" else value
            found.append(shape.format(str(shown).replace("|", "\\|")))
    if field.get("x-kubernetes-list-type") == "map":
        found.append(f"list keyed by {', '.join(field['x-kubernetes-list-map-keys'])}")
    found += [cel(rule) for rule in field.get("x-kubernetes-validations", [])]
    return "; ".join(found)


def cel(rule: dict[str, Any]) -> str:
    message = rule.get("message") or rule.get("messageExpression", "")
    return f"{message} (CEL `{rule['rule']}`)".replace("|", "\\|")


def operator_defaults(kind: str) -> dict[str, Any]:
    """``{spec path: default}`` from the model of ``kind``'s spec, if the package has one."""
    package = dli_operator.resources
    for info in pkgutil.iter_modules(package.__path__):
        module = importlib.import_module(f"{package.__name__}.{info.name}")
        model = getattr(module, kind, None)
        if (
            isinstance(model, type)
            and issubclass(model, BaseModel)
            and "spec" in model.model_fields
        ):
            spec = _model_in(model.model_fields["spec"].annotation)
            return dict(_defaults(spec)) if spec else {}
    return {}


def _defaults(model: type[BaseModel], prefix: str = "") -> Iterator[tuple[str, Any]]:
    for name, field in model.model_fields.items():
        key = f"{prefix}{field.alias or name}"
        if not field.is_required() and field.default is not None:
            yield key, field.default.value if isinstance(field.default, Enum) else field.default
        if nested := _model_in(field.annotation):
            many = typing.get_origin(_unoptional(field.annotation)) is list
            yield from _defaults(nested, f"{key}[]." if many else f"{key}.")


def _model_in(annotation: Any) -> type[BaseModel] | None:
    """The model inside ``X``, ``X | None`` or ``list[X]``, if any."""
    annotation = _unoptional(annotation)
    if typing.get_origin(annotation) is list:
        annotation = typing.get_args(annotation)[0]
    is_model = isinstance(annotation, type) and issubclass(annotation, BaseModel)
    return annotation if is_model else None


def _unoptional(annotation: Any) -> Any:
    if isinstance(annotation, types.UnionType) or typing.get_origin(annotation) is typing.Union:
        rest = [a for a in typing.get_args(annotation) if a is not type(None)]
        return rest[0] if len(rest) == 1 else annotation
    return annotation


def conditions(kind: str, schema: dict[str, Any]) -> list[str]:
    status = schema.get("properties", {}).get("status", {}).get("properties", {})
    items = status.get("conditions", {}).get("items", {}).get("properties", {})
    types = items.get("type", {}).get("enum", [])
    if not types:
        return []
    listed = ", ".join(f"`{t}`" for t in types)
    return [f"### {kind} conditions", "", f"Types: {listed}. Reasons: below.", ""]


def reasons_section() -> str:
    rows = ["## Condition reasons", "", "| Reason | Meaning |", "|---|---|"]
    for path, class_name in REASONS:
        documented = documented_constants(path, class_name)
        rows += [f"| `{value}` | {text} |" for value, text in documented]
    return "\n".join(rows) + "\n"


def documented_constants(path: Path, class_name: str) -> list[tuple[str, str]]:
    """(value, docstring) of each string constant of ``class_name``, in source order."""
    tree = ast.parse(path.read_text())
    (cls,) = [n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == class_name]
    found: list[tuple[str, str]] = []
    for stmt, after in zip(cls.body, [*cls.body[1:], None], strict=True):
        if isinstance(stmt, ast.Assign) and isinstance(stmt.value, ast.Constant):
            doc = after.value.value if _is_docstring(after) else ""  # type: ignore[union-attr]
            found.append((str(stmt.value.value), " ".join(str(doc).split())))
    return found


def _is_docstring(node: ast.stmt | None) -> bool:
    return (
        isinstance(node, ast.Expr)
        and isinstance(node.value, ast.Constant)
        and isinstance(node.value.value, str)
    )
