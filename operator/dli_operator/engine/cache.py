"""What the engine knows of each object, kept small (issue 18: finished jobs cost nothing).

A live job (not final, or being deleted) is kept whole, minus what the operator never reads
(``managedFields``, kopf's old copy of the spec in ``last-handled-configuration``): the driver
steps it from this body. A finished job is a ``Finished`` record of the few fields a TTL and a
deletion need; 100,000 of them fit in a few tens of megabytes (docs/benchmarks.md).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from dli_operator.resources.status import FINAL_PHASES

FINAL = frozenset(phase.value for phase in FINAL_PHASES)
# Written by kopf before the engine (0.2): a full copy of the spec, never read again.
DROPPED_ANNOTATIONS = ("dli.dev/last-handled-configuration",)

Body = dict[str, Any]


@dataclass(frozen=True, slots=True)
class Finished:
    """A finished job that is not being deleted: enough for its TTL and nothing else."""

    uid: str
    resource_version: str
    ttl_due: datetime | None


Entry = Body | Finished


def key_of(body: Mapping[str, Any]) -> str:
    meta = body.get("metadata") or {}
    return f"{meta.get('namespace', '')}/{meta.get('name', '')}"


def is_final(body: Mapping[str, Any]) -> bool:
    return (body.get("status") or {}).get("phase") in FINAL


def is_deleting(body: Mapping[str, Any]) -> bool:
    return bool((body.get("metadata") or {}).get("deletionTimestamp"))


def ttl_due(body: Mapping[str, Any]) -> datetime | None:
    """When a finished job's ``ttlSecondsAfterFinished`` runs out, or None."""
    ttl = (body.get("spec") or {}).get("ttlSecondsAfterFinished")
    finished = (body.get("status") or {}).get("completionTime")
    if ttl is None or not finished:
        return None
    try:
        return datetime.fromisoformat(str(finished)) + timedelta(seconds=int(ttl))
    except ValueError:
        return None


def slim(body: Mapping[str, Any]) -> Entry:
    """The cache entry for ``body``: a ``Finished`` record, or the body without dead weight."""
    meta = dict(body.get("metadata") or {})
    if is_final(body) and not is_deleting(body):
        return Finished(
            str(meta.get("uid", "")), str(meta.get("resourceVersion", "")), ttl_due(body)
        )
    meta.pop("managedFields", None)
    annotations = meta.get("annotations")
    if annotations and any(name in annotations for name in DROPPED_ANNOTATIONS):
        meta["annotations"] = {k: v for k, v in annotations.items() if k not in DROPPED_ANNOTATIONS}
    return {**body, "metadata": meta}


class ObjectCache:
    """Entries by ``namespace/name``; see the module docstring."""

    def __init__(self) -> None:
        self._entries: dict[str, Entry] = {}

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, key: object) -> bool:
        return key in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(list(self._entries))

    def get(self, key: str) -> Entry | None:
        return self._entries.get(key)

    def upsert(self, body: Mapping[str, Any]) -> Entry:
        entry = slim(body)
        self._entries[key_of(body)] = entry
        return entry

    def remove(self, key: str) -> Entry | None:
        return self._entries.pop(key, None)

    def version(self, key: str) -> str | None:
        entry = self._entries.get(key)
        if entry is None:
            return None
        if isinstance(entry, Finished):
            return entry.resource_version
        return str((entry.get("metadata") or {}).get("resourceVersion", ""))
