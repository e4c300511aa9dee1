"""``kubectl dli describe``: a job's status, attempts, conditions and recent Events in one view.

Laid out like ``kubectl describe``: ``Key: value`` lines, then tables. Ages are relative to now.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

from dli_operator.resources.batchjob import DliBatchJob

# kubectl describe shows the newest Events; older ones have usually expired (1 h) anyway.
EVENTS_SHOWN = 20


def render(job: DliBatchJob, events: Sequence[dict[str, Any]], now: datetime) -> str:
    status = job.status
    phase = status.phase.value if status.phase else "Pending"
    lines = [
        f"Name:         {job.metadata.name}",
        f"Namespace:    {job.metadata.namespace}",
        f"Phase:        {phase}" + (f" (DLI state {status.state})" if status.state else ""),
        f"Batch ID:     {status.batch_id or '<none>'}",
        f"App ID:       {status.app_id or '<none>'}",
        f"Queue:        {job.spec.queue or job.spec.cluster_name}",
        f"Retries:      {status.retries}",
        f"Started:      {_when(status.start_time, now)}",
        f"Completed:    {_when(status.completion_time, now)}",
        f"Duration:     {status.duration or '<none>'}",
        f"Suspend:      {str(job.spec.suspend).lower()}",
    ]
    if status.reason or status.message:
        lines.append(f"Reason:       {status.reason or ''}: {status.message or ''}")
    attempts = [
        [
            str(a.attempt),
            a.batch_id or "<none>",
            a.state or "",
            _when(a.submit_time, now),
            _when(a.finish_time, now),
            a.reason or "",
        ]
        for a in status.attempts
    ]
    lines += _section(
        "Attempts", ["#", "BATCH-ID", "STATE", "SUBMITTED", "FINISHED", "REASON"], attempts
    )
    conditions = [
        [c.type.value, c.status.value, c.reason, _when(c.last_transition_time, now), c.message]
        for c in status.conditions
    ]
    lines += _section("Conditions", ["TYPE", "STATUS", "REASON", "SINCE", "MESSAGE"], conditions)
    lines += _section("Events", ["TYPE", "REASON", "AGE", "MESSAGE"], _events(events, now))
    if status.log:
        lines += ["Log (last lines; kubectl dli logs for all):", *(f"  {x}" for x in status.log)]
    return "\n".join(lines)


def _events(events: Sequence[dict[str, Any]], now: datetime) -> list[list[str]]:
    def stamp(event: dict[str, Any]) -> str:
        return str(event.get("lastTimestamp") or event.get("eventTime") or "")

    def order(event: dict[str, Any]) -> tuple[str, int]:
        # Timestamps have whole seconds; within one, the resourceVersion keeps the write order.
        version = str((event.get("metadata") or {}).get("resourceVersion", ""))
        return stamp(event), int(version) if version.isdigit() else 0

    newest = sorted(events, key=order)[-EVENTS_SHOWN:]
    rows = []
    for event in newest:
        count = event.get("count") or 1
        age = _when(_parse(stamp(event)), now) + (f" (x{count})" if count > 1 else "")
        rows.append([event.get("type", ""), event.get("reason", ""), age, event.get("message", "")])
    return rows


def _section(title: str, header: list[str], rows: list[list[str]]) -> list[str]:
    if not rows:
        return [f"{title}:     <none>"]
    return [f"{title}:", *(f"  {line}" for line in _table([header, *rows]))]


def _table(rows: Iterable[list[str]]) -> list[str]:
    rows = list(rows)
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]) - 1)]
    return [
        "  ".join([*(c.ljust(w) for c, w in zip(row, widths, strict=False)), row[-1]])
        for row in rows
    ]


def _parse(text: str) -> datetime | None:
    try:
        return datetime.fromisoformat(text) if text else None
    except ValueError:
        return None


def _when(moment: datetime | None, now: datetime) -> str:
    """An age in kubectl's style (``45s``, ``3m``, ``2h``, ``4d``), or ``<none>``."""
    if moment is None:
        return "<none>"
    seconds = int((now - moment.astimezone(UTC)).total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= 2 * size:
            return f"{seconds // size}{unit} ago"
    return f"{max(seconds, 0)}s ago"
