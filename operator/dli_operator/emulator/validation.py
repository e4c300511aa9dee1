"""Checks a create request (dli_02_0124) the way DLI does, from the raw JSON.

Parsing is done here, not with the client's pydantic models: the emulator must answer a bad
request with DLI's own codes (DLI.0001 naming the parameter, DLI.0002 for a missing queue), and
must accept both the documented camelCase keys and the legacy snake_case ones that older SDKs and
Terraform still send (dli-api.md section 2.1). The result is normalized to the camelCase
``req_body`` DLI stores and shows in the details call (dli_02_0126).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Collection
from dataclasses import dataclass
from typing import Any

from dli_operator.emulator.replies import bad_parameter, not_found

# Memory needs a unit, "otherwise the startup fails" (dli_02_0124): 2G, 2048M, 512mb.
MEMORY = re.compile(r"^[1-9][0-9]*[kKmMgGtT][bB]?$")
SC_TYPES = ("A", "B", "C")
FEATURES = ("basic", "custom", "ai")
MAX_NAME = 128  # "contains a maximum of 128 characters" (dli_02_0124)
MAX_RETRIES = 100  # "The maximum value is 100, and the default value is 20" (dli_02_0124)
DEFAULT_RETRIES = 20
RECOVERY_DELAY_MS = 10000  # what DLI stores as minRecoveryDelayTime (dli-api.md section 2.1)
CUSTOM_SIZING = ("driverMemory", "driverCores", "executorMemory", "executorCores", "numExecutors")

Check = Callable[[str, Any], Any]


def _string(key: str, value: Any) -> str:
    if not isinstance(value, str):
        raise bad_parameter(f"Parameter {key} must be a string")
    return value


def _strings(key: str, value: Any) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise bad_parameter(f"Parameter {key} must be an array of strings")
    return value


def _resources(key: str, value: Any) -> list[dict[str, str]]:
    if not isinstance(value, list) or not all(_is_resource(v) for v in value):
        raise bad_parameter(f"Parameter {key} must be an array of {{name, type}} objects")
    return value


def _is_resource(value: Any) -> bool:
    return isinstance(value, dict) and all(isinstance(v, str) for v in value.values())


def _groups(key: str, value: Any) -> list[dict[str, Any]]:
    if not isinstance(value, list):
        raise bad_parameter(f"Parameter {key} must be an array of {{name, resources}} objects")
    for group in value:
        if not isinstance(group, dict) or not isinstance(group.get("name", ""), str):
            raise bad_parameter(f"Parameter {key} must be an array of {{name, resources}} objects")
        _resources(f"{key}.resources", group.get("resources", []))
    return value


def _conf(key: str, value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise bad_parameter(f"Parameter {key} must be an object")
    return value


def _memory(key: str, value: Any) -> str:
    if not isinstance(value, str) or not MEMORY.match(value):
        raise bad_parameter(f"Parameter {key} must be a size with a unit, such as 2G or 2048M")
    return value


def _positive(key: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise bad_parameter(f"Parameter {key} must be a positive integer")
    return value


def _flag(key: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise bad_parameter(f"Parameter {key} must be true or false")
    return value


def _retries(key: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_RETRIES:
        raise bad_parameter(f"Parameter {key} must be an integer from 0 to {MAX_RETRIES}")
    return value


def _one_of(choices: tuple[str, ...]) -> Check:
    def check(key: str, value: Any) -> str:
        if value not in choices:
            raise bad_parameter(f"Parameter {key} must be one of {', '.join(choices)}")
        return str(value)

    return check


def _name(key: str, value: Any) -> str:
    if len(_string(key, value)) > MAX_NAME:
        raise bad_parameter(f"Parameter {key} must contain at most {MAX_NAME} characters")
    return str(value)


# req_body key -> (accepted request keys, check). The first spelling is DLI's documented one.
FIELDS: dict[str, tuple[tuple[str, ...], Check]] = {
    "file": (("file",), _string),
    "className": (("className", "class_name"), _string),
    "queue": (("queue",), _string),
    "cluster_name": (("cluster_name",), _string),
    "args": (("args",), _strings),
    "sc_type": (("sc_type",), _one_of(SC_TYPES)),
    "jars": (("jars",), _strings),
    "pyFiles": (("pyFiles", "python_files"), _strings),
    "files": (("files",), _strings),
    "modules": (("modules",), _strings),
    "resources": (("resources",), _resources),
    "groups": (("groups",), _groups),
    "conf": (("conf",), _conf),
    "name": (("name",), _name),
    "driverMemory": (("driverMemory", "driver_memory"), _memory),
    "driverCores": (("driverCores", "driver_cores"), _positive),
    "executorMemory": (("executorMemory", "executor_memory"), _memory),
    "executorCores": (("executorCores", "executor_cores"), _positive),
    "numExecutors": (("numExecutors", "num_executors"), _positive),
    "obs_bucket": (("obs_bucket",), _string),
    "autoRecovery": (("auto_recovery", "autoRecovery"), _flag),
    "maxRetryTimes": (("max_retry_times", "maxRetryTimes"), _retries),
    "feature": (("feature",), _one_of(FEATURES)),
    "spark_version": (("spark_version",), _string),
    "image": (("image",), _string),
    "catalog_name": (("catalog_name",), _string),
    "execution_agency_urn": (("execution_agency_urn",), _string),
}
KNOWN_KEYS = frozenset(alias for aliases, _ in FIELDS.values() for alias in aliases)


@dataclass(frozen=True)
class ValidRequest:
    """A create request that passed every check, with what the state machine needs."""

    req_body: dict[str, Any]
    queue: str
    sc_type: str
    conf: dict[str, str]

    @property
    def auto_recovery(self) -> bool:
        return bool(self.req_body.get("autoRecovery", False))

    @property
    def max_retry_times(self) -> int:
        return int(self.req_body.get("maxRetryTimes", DEFAULT_RETRIES))


def parse_create(raw: bytes, queues: Collection[str]) -> ValidRequest:
    """Validate a create body; raise ``ApiError`` with DLI's code and the parameter's name."""
    body = _json_object(raw)
    unknown = sorted(set(body) - KNOWN_KEYS)
    if unknown:
        raise bad_parameter(f"Unrecognized parameter {unknown[0]}")
    req_body = _normalize(body)
    _check_rules(req_body, body)
    queue = str(req_body.get("queue") or req_body.get("cluster_name") or "")
    if queue not in queues:
        raise not_found(f"There is no queue named {queue}")
    return ValidRequest(_stored(req_body), queue, _sc_type(req_body), _conf_strings(req_body))


def _json_object(raw: bytes) -> dict[str, Any]:
    try:
        body = json.loads(raw or b"null")
    except ValueError:
        raise bad_parameter("The request body is not valid JSON") from None
    if not isinstance(body, dict):
        raise bad_parameter("The request body must be a JSON object")
    return body


def _normalize(body: dict[str, Any]) -> dict[str, Any]:
    req_body: dict[str, Any] = {}
    for key, (aliases, check) in FIELDS.items():
        for alias in aliases:
            if alias in body and body[alias] is not None:
                req_body[key] = check(alias, body[alias])
                break
    return req_body


def _check_rules(req_body: dict[str, Any], body: dict[str, Any]) -> None:
    """The rules that involve more than one field, or a field's absence (dli_02_0124)."""
    if not req_body.get("file"):
        raise bad_parameter("Parameter file is mandatory and cannot be empty")
    if not req_body.get("className") and not str(req_body["file"]).endswith(".py"):
        raise bad_parameter("Parameter className is mandatory for a JAR job")
    if not req_body.get("queue") and not req_body.get("cluster_name"):
        raise bad_parameter("Parameter queue is mandatory (or the legacy cluster_name)")
    if "image" in req_body and req_body.get("feature") != "custom":
        raise bad_parameter("Parameter image is only valid when feature is custom")
    if req_body.get("feature") == "custom" and not req_body.get("image"):
        raise bad_parameter("Parameter image is mandatory when feature is custom")


def _sc_type(req_body: dict[str, Any]) -> str:
    """What the response shows: the given type, ``CUSTOMIZED`` when sizes override it, else A."""
    if any(key in req_body for key in CUSTOM_SIZING):
        return "CUSTOMIZED"
    return str(req_body.get("sc_type", "A"))


def _conf_strings(req_body: dict[str, Any]) -> dict[str, str]:
    conf = req_body.get("conf", {})
    return {str(k): v if isinstance(v, str) else json.dumps(v) for k, v in conf.items()}


def _stored(req_body: dict[str, Any]) -> dict[str, Any]:
    """The ``req_body`` DLI keeps: the request plus the defaults it fills in (dli-api.md 2.1)."""
    stored: dict[str, Any] = {key: [] for key in ("jars", "pyFiles", "files", "resources")}
    stored.update({"modules": [], "groups": [], "args": [], "conf": {}, "autoRecovery": False})
    stored.update(req_body)
    stored.setdefault("maxRetryTimes", DEFAULT_RETRIES)
    stored["minRecoveryDelayTime"] = RECOVERY_DELAY_MS
    stored.setdefault("feature", "basic")
    return stored
