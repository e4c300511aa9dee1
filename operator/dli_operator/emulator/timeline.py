"""The job state machine as pure time arithmetic: a job's whole life is planned at submit.

DLI states (dli_02_0124 table 7, dli_02_0127): ``starting -> running -> success | dead``, and with
``auto_recovery`` a failed attempt passes through ``recovering`` and runs again, at most
``max_retry_times`` more times, before the job ends ``dead``. The emulator decides every attempt's
outcome when the job is created and lays the states out on a timeline; reading a job looks its
state up for "now". Nothing runs in the background, so 10,000 jobs cost no timers, a fake clock
moves them all, and a restarted emulator finds them where wall-clock time has taken them.

A job chooses its own script through Spark conf keys (issue 4), read by ``read_script``.
"""

from __future__ import annotations

import hashlib
from bisect import bisect_right
from collections.abc import Mapping
from dataclasses import dataclass

from dli_operator.emulator.replies import bad_parameter

OUTCOME = "spark.dli.emulator.outcome"
START_SECONDS = "spark.dli.emulator.startSeconds"
RUN_SECONDS = "spark.dli.emulator.runSeconds"
FAIL_FIRST = "spark.dli.emulator.failFirst"
KEY = "spark.dli.emulator.key"

STARTING, RUNNING, RECOVERING = "starting", "running", "recovering"
SUCCESS, DEAD = "success", "dead"
TERMINAL = frozenset({SUCCESS, DEAD})
STATES = (STARTING, RUNNING, DEAD, SUCCESS, RECOVERING)  # the list API's order (dli_02_0125)

Segment = tuple[int, str, int]
"""``(begin_ms, state, attempt)``: the job is in ``state`` from ``begin_ms`` on."""


@dataclass(frozen=True)
class Script:
    """What a job asked for through its conf, with the emulator's defaults filled in."""

    outcome: str
    start_ms: int
    run_ms: int
    fail_first: int
    key: str | None


def read_script(conf: Mapping[str, str], *, start_seconds: float, run_seconds: float) -> Script:
    """Read the ``spark.dli.emulator.*`` keys; a bad value is a DLI.0001 naming the key."""
    outcome = conf.get(OUTCOME, SUCCESS)
    if outcome not in TERMINAL:
        raise bad_parameter(f"Parameter conf.{OUTCOME} must be success or dead")
    fail_first = int(_number(conf, FAIL_FIRST, 0))
    key = conf.get(KEY)
    if fail_first and not key:
        raise bad_parameter(f"Parameter conf.{FAIL_FIRST} needs conf.{KEY} to count submissions")
    return Script(
        outcome=outcome,
        start_ms=_ms(_number(conf, START_SECONDS, start_seconds)),
        run_ms=_ms(_number(conf, RUN_SECONDS, run_seconds)),
        fail_first=fail_first,
        key=key,
    )


def _number(conf: Mapping[str, str], key: str, default: float) -> float:
    if key not in conf:
        return default
    try:
        value = float(conf[key])
    except ValueError:
        value = -1.0
    if value < 0 or value != value:  # negative or NaN
        raise bad_parameter(f"Parameter conf.{key} must be a number of at least 0")
    return value


def _ms(seconds: float) -> int:
    return round(seconds * 1000)


def outcomes(script: Script, failures_left: int, attempts: int) -> tuple[str, ...]:
    """Each attempt's outcome, stopping at the first success.

    Every attempt (a new batch, or a DLI recovery of one) uses up one of the ``failFirst``
    failures still owed for the job's key; after those it follows ``outcome``.
    """
    result: list[str] = []
    for _ in range(attempts):
        forced = len(result) < failures_left
        result.append(DEAD if forced else script.outcome)
        if result[-1] == SUCCESS:
            break
    return tuple(result)


def lay_out(create_ms: int, start_ms: int, run_ms: int, results: tuple[str, ...]) -> list[Segment]:
    """The timeline: starting, then per attempt running, with recovering between attempts."""
    segments: list[Segment] = [(create_ms, STARTING, 0)]
    at = create_ms + start_ms
    for attempt, _result in enumerate(results):
        if attempt:
            segments.append((at, RECOVERING, attempt))
            at += start_ms
        segments.append((at, RUNNING, attempt))
        at += run_ms
    segments.append((at, results[-1], len(results) - 1))
    return segments


def cut(segments: list[Segment], stop_ms: int) -> list[Segment]:
    """The timeline of a job stopped (cancelled or killed) at ``stop_ms``: it is dead from then."""
    kept = [segment for segment in segments if segment[0] <= stop_ms]
    if kept[-1][1] in TERMINAL:
        return segments
    return [*kept, (stop_ms, DEAD, kept[-1][2])]


def current(segments: list[Segment], begins: list[int], now_ms: int) -> Segment:
    """The segment the job is in at ``now_ms`` (the first one if ``now_ms`` is before it)."""
    return segments[max(bisect_right(begins, now_ms) - 1, 0)]


def app_id(batch_id: str, attempt: int) -> str:
    """A Spark application id per attempt, stable across restarts (shape seen in dli-api.md 2.2)."""
    return "spark-" + hashlib.sha1(f"{batch_id}/{attempt}".encode()).hexdigest()[:32]


def running_ms(segments: list[Segment], now_ms: int) -> int:
    """Time spent running so far: DLI's ``duration`` ("job running duration", dli_02_0124)."""
    total = 0
    for index, (begin, state, _) in enumerate(segments):
        if begin >= now_ms:
            break
        if state == RUNNING:
            end = segments[index + 1][0] if index + 1 < len(segments) else now_ms
            total += min(end, now_ms) - begin
    return total
