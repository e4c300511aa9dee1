"""Wire models of the DLI v2.0 batch API, field for field as DLI spells them.

Python names are snake_case; aliases carry DLI's own spelling (``className``, ``appId``,
``sc_type``...), so ``model_dump(by_alias=True, exclude_none=True)`` is the wire body.
Requests forbid unknown fields: a typo must fail here, not at DLI. Responses ignore
unknown fields and accept ``null`` wherever DLI has been seen to send it, because DLI
adds fields over time (``image``, ``spark_version``) and older queues omit them.

Pure: no httpx, no I/O. The client, the emulator and ``translate.py`` all use these.
Sources: create dli_02_0124, list dli_02_0125, details dli_02_0126, state dli_02_0127,
log dli_02_0128, cancel dli_02_0129, errors dli_02_0056.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import (
    AliasChoices,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    ValidatorFunctionWrapHandler,
    WrapValidator,
    field_validator,
    model_validator,
)


class BatchState(StrEnum):
    """DLI's raw batch states (dli_02_0124 table 7, dli_02_0126).

    Parsing is case-insensitive (the dli_02_0127 example says ``Success``). A value DLI
    has not documented is kept as an ad-hoc member whose value is the raw text, so it
    round-trips and is shown to users, and it is never terminal.
    """

    STARTING = "starting"
    RUNNING = "running"
    RECOVERING = "recovering"
    SUCCESS = "success"
    DEAD = "dead"

    @classmethod
    def _missing_(cls, value: object) -> BatchState | None:
        if not isinstance(value, str):
            return None
        known = cls._value2member_map_.get(value.strip().lower())
        if isinstance(known, BatchState):
            return known
        unknown = str.__new__(cls, value)
        unknown._name_ = "UNKNOWN"
        unknown._value_ = value
        return unknown

    @property
    def known(self) -> bool:
        """Whether DLI documents this state."""
        return self.value in BatchState._value2member_map_


# "dead" covers failure, cancellation and the ~3 h resource timeout alike (dli_02_0124).
TERMINAL_STATES = frozenset({BatchState.SUCCESS, BatchState.DEAD})
# Terraform cancels only in these states; DLI refuses to cancel finished jobs (dli_02_0129).
CANCELLABLE_STATES = frozenset({BatchState.STARTING, BatchState.RUNNING, BatchState.RECOVERING})


def is_terminal(state: BatchState | str) -> bool:
    """Whether the job has ended in a documented terminal state (``success``, ``dead``).

    An undocumented state (``killed``, ``error``...) is never terminal *here*: whether it ends
    the attempt is the caller's decision, made with ``is_known_state`` (issue 10, item 12).
    """
    return BatchState(state) in TERMINAL_STATES


def is_known_state(state: BatchState | str) -> bool:
    """Whether DLI documents this state (dli_02_0124 table 7); ``False`` for ``killed``, ``error``.

    The raw text of an unknown state is ``str(state)``: show it, never guess its meaning.
    """
    return BatchState(state).known


def is_cancellable(state: BatchState | str) -> bool:
    """Whether DLI would accept a cancel in this state."""
    return BatchState(state) in CANCELLABLE_STATES


def from_millis(millis: int | None) -> datetime | None:
    """A DLI millisecond epoch timestamp as an aware UTC datetime."""
    return None if millis is None else datetime.fromtimestamp(millis / 1000, tz=UTC)


class _Request(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        validate_by_name=True,
        validate_by_alias=True,
        serialize_by_alias=True,
        frozen=True,
    )


class _Response(BaseModel):
    model_config = ConfigDict(
        extra="ignore",
        validate_by_name=True,
        validate_by_alias=True,
        serialize_by_alias=True,
    )


def _alias(current: str, *legacy: str) -> AliasChoices:
    # The current documented spelling first, then the ones old SDKs and Terraform send
    # (dli-api.md §2.1); the emulator accepts all of them.
    return AliasChoices(current, *legacy)


class JobResource(_Request):
    """A package in DLI resource management (dli_02_0124 table 4)."""

    name: str | None = None
    type: str | None = None


class JobResourcesGroup(_Request):
    """A package group (dli_02_0124 table 5)."""

    name: str | None = None
    resources: list[JobResource] | None = None


class BatchJobRequest(_Request):
    """The body of ``POST /v2.0/{project_id}/batches`` (dli_02_0124 table 2)."""

    file: str = Field(min_length=1)
    # Documented as mandatory, but PySpark submissions omit it (dli-api.md §2.1).
    class_name: str | None = Field(
        None, serialization_alias="className", validation_alias=_alias("className", "class_name")
    )
    queue: str | None = None
    cluster_name: str | None = None
    args: list[str] | None = None
    sc_type: Literal["A", "B", "C"] | None = None
    jars: list[str] | None = None
    py_files: list[str] | None = Field(
        None,
        serialization_alias="pyFiles",
        validation_alias=_alias("pyFiles", "python_files", "py_files"),
    )
    files: list[str] | None = None
    modules: list[str] | None = None
    resources: list[JobResource] | None = None
    groups: list[JobResourcesGroup] | None = None
    conf: dict[str, str] | None = None
    name: str | None = Field(None, max_length=128)
    driver_memory: str | None = Field(
        None,
        serialization_alias="driverMemory",
        validation_alias=_alias("driverMemory", "driver_memory"),
    )
    driver_cores: int | None = Field(
        None,
        ge=0,
        serialization_alias="driverCores",
        validation_alias=_alias("driverCores", "driver_cores"),
    )
    executor_memory: str | None = Field(
        None,
        serialization_alias="executorMemory",
        validation_alias=_alias("executorMemory", "executor_memory"),
    )
    executor_cores: int | None = Field(
        None,
        ge=0,
        serialization_alias="executorCores",
        validation_alias=_alias("executorCores", "executor_cores"),
    )
    num_executors: int | None = Field(
        None,
        ge=0,
        serialization_alias="numExecutors",
        validation_alias=_alias("numExecutors", "num_executors"),
    )
    obs_bucket: str | None = None
    # DLI stores these two camelCase in req_body (dli-api.md §2.1).
    auto_recovery: bool | None = Field(
        None, validation_alias=_alias("auto_recovery", "autoRecovery")
    )
    max_retry_times: int | None = Field(
        None, ge=0, le=100, validation_alias=_alias("max_retry_times", "maxRetryTimes")
    )
    feature: Literal["basic", "ai", "custom"] | None = None
    spark_version: str | None = None
    image: str | None = None
    execution_agency_urn: str | None = None
    catalog_name: str | None = None

    def to_wire(self) -> bytes:
        """The exact JSON bytes to send (and to sign): DLI spelling, no nulls, compact."""
        return self.model_dump_json(by_alias=True, exclude_none=True).encode("utf-8")


# dli_02_0126: "batch_id must match" a UUID; an id that does not is not a DLI batch.
BATCH_ID_PATTERN = re.compile(
    r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"
)


def is_batch_id(value: object) -> bool:
    """Whether ``value`` is a DLI batch id (a UUID string)."""
    return isinstance(value, str) and BATCH_ID_PATTERN.match(value) is not None


def _batch_id(value: object) -> object:
    if not is_batch_id(value):
        raise ValueError(f"{str(value)[:80]!r} is not a DLI batch id (a UUID)")
    return value


def _state(value: object) -> object:
    # A missing, empty or non-text state says nothing about the job: never read it as a state.
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"{str(value)[:80]!r} is not a DLI job state")
    return value


def _or_none(value: object, handler: ValidatorFunctionWrapHandler) -> object:
    # A field only mirrored to status must not make the whole reply unreadable: DLI has sent
    # nulls (and old queues other shapes) for fields it documents (issue 10, item 4).
    try:
        return handler(value)
    except ValidationError:
        return None


def _lines(value: object) -> list[str]:
    # ``log: null`` and null lines have been seen; anything else than a list of text is no log.
    if not isinstance(value, list):
        return []
    return [line for line in value if isinstance(line, str)]


BatchId = Annotated[str, BeforeValidator(_batch_id)]
RawState = Annotated[BatchState, BeforeValidator(_state)]
OptionalText = Annotated[str | None, WrapValidator(_or_none)]
OptionalMillis = Annotated[int | None, WrapValidator(_or_none)]
LogLines = Annotated[list[str], BeforeValidator(_lines)]


class BatchJob(_Response):
    """A batch job as create, details and list return it (dli_02_0124/0126 table 6).

    ``id`` (a UUID) and ``state`` are required: without them the reply says nothing about the
    job. ``state`` keeps undocumented values raw (``is_known_state``). Every other field is
    optional, and one that is null or of the wrong type reads as absent instead of failing the
    reply (a list page must not be lost to one odd session).
    """

    id: BatchId
    state: RawState
    app_id: OptionalText = Field(None, alias="appId")
    name: OptionalText = None
    owner: OptionalText = None
    proxy_user: OptionalText = Field(None, alias="proxyUser")
    kind: OptionalText = None
    # DLI sends the last 10 lines; never trust it to be present.
    log: LogLines = Field(default_factory=list)
    sc_type: OptionalText = None
    cluster_name: OptionalText = None
    queue: OptionalText = None
    create_time: OptionalMillis = None
    update_time: OptionalMillis = None
    duration: OptionalMillis = None
    # Details and list only: the stored request, itself a JSON string (dli_02_0126).
    req_body: OptionalText = None
    feature: OptionalText = None
    spark_version: OptionalText = None
    image: OptionalText = None

    @property
    def created_at(self) -> datetime | None:
        return from_millis(self.create_time)

    @property
    def updated_at(self) -> datetime | None:
        return from_millis(self.update_time)


class IncompleteSession(BaseModel):
    """A list entry without a readable ``id`` or ``state``: what can still be said about it."""

    model_config = ConfigDict(frozen=True)

    id: str | None
    name: str | None
    reason: str


def _incomplete(raw: object, error: ValidationError) -> IncompleteSession:
    first = error.errors()[0]
    where = ".".join(str(part) for part in first["loc"]) or "session"
    fields = raw if isinstance(raw, dict) else {}
    found_id, name = fields.get("id"), fields.get("name")
    return IncompleteSession(
        id=found_id if is_batch_id(found_id) else None,
        name=name if isinstance(name, str) else None,
        reason=f"{where}: {first['msg']}"[:200],
    )


class BatchList(_Response):
    """``GET /batches``: one page; the count is ``total``, not ``total_count`` (dli_02_0125).

    ``total`` and ``sessions`` are required: a 200 without them (an error body sent with 200)
    is not an empty page, it is an unreadable one, and reading it as "no jobs" would make an
    adoption look-up post the job twice (issue 10, item 4). A session without a readable id
    or state is kept in ``incomplete`` (never in ``sessions``, never dropped silently): a poll
    can skip it and GET its job, a look-up by name must not conclude the job is absent.
    """

    from_: OptionalMillis = Field(0, alias="from")
    total: int = Field(ge=0)
    sessions: list[BatchJob]
    create_time: OptionalMillis = None
    incomplete: list[IncompleteSession] = Field(default_factory=list, exclude=True)

    @model_validator(mode="before")
    @classmethod
    def _split_sessions(cls, data: Any) -> Any:
        if not isinstance(data, dict) or not isinstance(data.get("sessions"), list):
            return data
        sessions: list[BatchJob] = []
        incomplete: list[IncompleteSession] = []
        for raw in data["sessions"]:
            try:
                sessions.append(BatchJob.model_validate(raw))
            except ValidationError as error:
                incomplete.append(_incomplete(raw, error))
        return {**data, "sessions": sessions, "incomplete": incomplete}

    @field_validator("total", mode="before")
    @classmethod
    def _whole_number(cls, value: object) -> object:
        # JSON true is not a count; pydantic would read it as 1.
        if isinstance(value, bool):
            raise ValueError("total must be a number")
        return value


class BatchStateResponse(_Response):
    """``GET /batches/{id}/state`` (dli_02_0127)."""

    id: BatchId
    state: RawState


class BatchCancelResponse(_Response):
    """``DELETE /batches/{id}``: ``{"msg": "deleted"}`` (dli_02_0129)."""

    msg: OptionalText = None


class BatchLog(_Response):
    """``GET /batches/{id}/log`` (dli_02_0128, deprecated by DLI but still served).

    ``log`` is required: a 200 without it is no log, not an empty one.
    """

    id: OptionalText = None
    from_: OptionalMillis = Field(0, alias="from")
    # Paging depends on it (kubectl dli logs): a null or odd total is unreadable, not 0.
    total: int = Field(0, ge=0, strict=True)
    log: LogLines

    @field_validator("log", mode="before")
    @classmethod
    def _present(cls, value: object) -> object:
        if value is None:
            raise ValueError("log is missing")
        return value


class ErrorBody(_Response):
    """An error body from DLI (``error_code``/``error_msg``, dli_02_0056) or the gateway.

    The alternative spellings are the ones the SDK's exception handler also reads.
    ``is_success`` is the v1.0 envelope (dli_02_0174); a ``false`` there is an error too.
    IAM sends numeric codes, hence the coercion.
    """

    model_config = ConfigDict(extra="ignore", coerce_numbers_to_str=True)

    error_code: str | None = Field(
        None, validation_alias=AliasChoices("error_code", "errorCode", "code")
    )
    error_msg: str | None = Field(
        None, validation_alias=AliasChoices("error_msg", "errorMsg", "message")
    )
    request_id: str | None = None
    is_success: bool | None = None
