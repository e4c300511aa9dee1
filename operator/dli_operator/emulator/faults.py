"""Scripted faults: what the next calls of an operation answer instead of (or after) the real reply.

Tests script the failures a DLI client must survive, in the spirit of kmock's
``kmock['get /url'] << status``: "the next 2 creates answer 503", "the next state call hangs",
"drop the connection after the create went through" (the ambiguous POST the operator must never
resubmit), "answer 429 with Retry-After to every other list", "kill this job", "carry out this
create only after the client gave up" (the late create), "answer 200 without ``sessions``" (a
mangled reply), "drip the reply one chunk at a time" (a slow body). Everything is counted,
never random (a ``rate`` is spread evenly, as for throttles), so a script gives the same answers
on every run.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

OPERATIONS = ("create", "list", "show", "state", "log", "cancel")
ACTIONS = ("respond", "delay", "hang", "drop", "late", "mangle", "drip")
# These act on the real reply, so they always run after the call was handled.
AFTER_ONLY = frozenset({"mangle", "drip"})
WHEN = ("before", "after")

# What a scripted error answers when the script gives no body: DLI.0999 is DLI's own
# "server-side error" code (dli_02_0056).
DEFAULT_BODY = {
    "error_code": "DLI.0999",
    "error_msg": "Internal error (fault injected by the emulator)",
}


class FaultSpecError(ValueError):
    """A fault script the emulator cannot follow; the message says which field is wrong."""


@dataclass
class Rule:
    """One scripted answer for the next ``times`` calls of ``operation`` (``*``: any)."""

    operation: str
    action: str
    times: int = 1
    when: str = "before"
    status: int | None = None
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    seconds: float = 0.0
    rate: float | None = None
    """Only this share of the matching calls, spread evenly; ``None``: every one."""
    remove: list[str] = field(default_factory=list)
    """``mangle``: keys removed from the reply and from each of its ``sessions``."""
    assign: dict[str, Any] = field(default_factory=dict)
    """``mangle``: keys set (``null`` included) in the reply and in each of its ``sessions``."""
    chunk_bytes: int = 16
    """``drip``: bytes sent every ``seconds``."""
    credit: float = 0.0

    def hit(self) -> bool:
        """Whether this call is one of the ``rate`` share (always, without a rate)."""
        if self.rate is None:
            return True
        self.credit += self.rate
        if self.credit < 1.0 - 1e-9:
            return False
        self.credit -= 1.0
        return True

    def mangled(self, reply: Any) -> Any:
        """The reply with ``remove`` and ``set`` applied to it and to each of its sessions."""
        if not isinstance(reply, dict):
            return reply
        targets = [reply, *[s for s in reply.get("sessions") or [] if isinstance(s, dict)]]
        for target in targets:
            for key in self.remove:
                target.pop(key, None)
            target.update(self.assign)
        return reply

    def answer(self) -> tuple[int, Any, dict[str, str]]:
        """Status, body and headers of a ``respond`` (or a ``delay`` that also answers)."""
        status = self.status or 500
        body = self.body if self.body is not None else DEFAULT_BODY
        return status, body, self.headers


@dataclass
class Throttle:
    """Answer ``rate`` of an operation's calls with 429 ``APIG.0308``, spread evenly."""

    operation: str
    rate: float
    retry_after: float | None = None
    times: int | None = None
    credit: float = 0.0

    def hit(self) -> bool:
        """Deterministic spreading: rate 0.5 throttles every 2nd call, 0.25 every 4th."""
        self.credit += self.rate
        if self.credit < 1.0 - 1e-9:
            return False
        self.credit -= 1.0
        if self.times is not None:
            self.times -= 1
        return True


class Faults:
    """The active script; consulted by every DLI call before and after it is handled."""

    def __init__(self) -> None:
        self.rules: list[Rule] = []
        self.throttles: list[Throttle] = []

    def clear(self) -> None:
        self.rules.clear()
        self.throttles.clear()

    def add(self, spec: Mapping[str, Any]) -> Rule | Throttle:
        """Add one rule from its JSON form (see docs/emulator.md)."""
        if spec.get("action") == "throttle":
            throttle = _throttle(spec)
            self.throttles.append(throttle)
            return throttle
        rule = _rule(spec)
        self.rules.append(rule)
        return rule

    def take(self, operation: str, when: str) -> Rule | None:
        """Use up one call of the first rule matching this operation and moment."""
        for rule in self.rules:
            if rule.when == when and rule.operation in (operation, "*") and rule.hit():
                rule.times -= 1
                if rule.times <= 0:
                    self.rules.remove(rule)
                return rule
        return None

    def throttled(self, operation: str) -> Throttle | None:
        """The throttle that answers this call with a 429, if any."""
        for throttle in self.throttles:
            if throttle.operation in (operation, "*") and throttle.hit():
                if throttle.times is not None and throttle.times <= 0:
                    self.throttles.remove(throttle)
                return throttle
        return None

    def describe(self) -> list[dict[str, Any]]:
        return [{"action": "throttle", **asdict(t)} for t in self.throttles] + [
            _described(rule) for rule in self.rules
        ]


def _described(rule: Rule) -> dict[str, Any]:
    # Spelled as a script spells it, so a listed rule can be posted back.
    fields = asdict(rule)
    fields["set"] = fields.pop("assign")
    fields["chunkBytes"] = fields.pop("chunk_bytes")
    return fields


def _operation(spec: Mapping[str, Any]) -> str:
    operation = spec.get("operation", "*")
    if operation != "*" and operation not in OPERATIONS:
        raise FaultSpecError(f"operation must be * or one of {', '.join(OPERATIONS)}")
    return str(operation)


def _rule(spec: Mapping[str, Any]) -> Rule:
    action = spec.get("action")
    if action not in ACTIONS:
        raise FaultSpecError(f"action must be one of {', '.join((*ACTIONS, 'throttle', 'kill'))}")
    times, status = spec.get("times", 1), spec.get("status")
    when = "after" if action in AFTER_ONLY else spec.get("when", "before")
    if not isinstance(times, int) or isinstance(times, bool) or times < 1:
        raise FaultSpecError("times must be a positive integer")
    if when not in WHEN:
        raise FaultSpecError("when must be before or after")
    if action == "respond" and status is None:
        raise FaultSpecError("a respond fault needs a status")
    if status is not None and (not isinstance(status, int) or not 100 <= status <= 599):
        raise FaultSpecError("status must be an HTTP status code")
    seconds = _seconds(spec, "seconds", required=action in ("delay", "late", "drip"))
    headers = {str(k): str(v) for k, v in dict(spec.get("headers") or {}).items()}
    rule = Rule(
        _operation(spec), str(action), times, str(when), status, spec.get("body"), headers, seconds
    )
    rule.rate = _rate(spec) if "rate" in spec else None
    _extras(rule, spec)
    return rule


def _extras(rule: Rule, spec: Mapping[str, Any]) -> None:
    """The fields of ``late``, ``mangle`` and ``drip``."""
    if rule.action == "late" and rule.operation != "create":
        raise FaultSpecError("a late fault is for the create operation")
    if rule.action == "late" and rule.when != "before":
        raise FaultSpecError("when must be before for a late create")
    remove, values = spec.get("remove", []), spec.get("set", {})
    if not isinstance(remove, list) or not all(isinstance(k, str) for k in remove):
        raise FaultSpecError("remove must be a list of field names")
    if not isinstance(values, dict):
        raise FaultSpecError("set must be an object of field names and values")
    if rule.action == "mangle" and not (remove or values):
        raise FaultSpecError("a mangle fault needs remove or set")
    rule.remove, rule.assign = list(remove), dict(values)
    chunk = spec.get("chunkBytes", 16)
    if not isinstance(chunk, int) or isinstance(chunk, bool) or chunk < 1:
        raise FaultSpecError("chunkBytes must be a positive integer")
    rule.chunk_bytes = chunk


def _rate(spec: Mapping[str, Any]) -> float:
    rate = _seconds(spec, "rate", required=True)
    if not 0 < rate <= 1:
        raise FaultSpecError("rate must be more than 0 and at most 1")
    return rate


def _throttle(spec: Mapping[str, Any]) -> Throttle:
    rate = _rate(spec)
    times = spec.get("times")
    if times is not None and (not isinstance(times, int) or times < 1):
        raise FaultSpecError("times must be a positive integer")
    retry_after = _seconds(spec, "retryAfter", required=False) if "retryAfter" in spec else None
    return Throttle(_operation(spec), rate, retry_after, times)


def _seconds(spec: Mapping[str, Any], key: str, *, required: bool) -> float:
    value = spec.get(key, None if required else 0.0)
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        raise FaultSpecError(f"{key} must be a number of at least 0")
    return float(value)
