"""Cron schedule math for ScheduledDliBatchJob: parse, next time, missed times. Pure.

The cron parser is cronsim (https://pypi.org/project/cronsim/), not our own, chosen over croniter:
- DST: cronsim follows Debian's cron (Vixie cron). A time skipped by a spring-forward gap runs
  right after the jump; a time repeated by a fall-back runs once. croniter 7.0 runs
  ``30 1 * * *`` twice on a fall-back night (01:30 EDT and 01:30 EST), which for a batch job
  means the nightly Spark job runs twice; its DST bugs have a long history
  (pallets-eco/croniter#1, #28).
- Time zones: cronsim works on ``zoneinfo`` datetimes as they are; croniter needed pytz-era
  workarounds for years.
- Maintenance: cronsim is small (one module, typed, py.typed), written for and used by
  Healthchecks.io, released regularly (2.8 in 2026). croniter was declared abandoned by its
  author in December 2024 and moved to pallets-eco in 2025 (buildbot/buildbot#8371).
cronsim has no ``@daily``-style macros, so the five-field expansions (as robfig/cron and
batch/v1 CronJob define them) are a table here.

Every datetime in and out is timezone-aware; results are in UTC. The zone only decides which
instants a wall-clock expression names.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from itertools import islice, takewhile
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from cronsim import CronSim, CronSimError

MACROS = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}
DEFAULT_ZONE = "UTC"


class ScheduleError(ValueError):
    """A schedule or time zone the operator cannot use; the message names the field."""


@dataclass(frozen=True)
class Cron:
    """A cron expression in a time zone."""

    expression: str
    zone: ZoneInfo

    @classmethod
    def parse(cls, schedule: str, time_zone: str | None = None) -> Cron:
        """Raises ScheduleError naming ``spec.schedule`` or ``spec.timeZone``."""
        try:
            zone = ZoneInfo(time_zone or DEFAULT_ZONE)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ScheduleError(f"spec.timeZone: unknown time zone {time_zone!r}") from exc
        expression = MACROS.get(schedule.strip().lower(), schedule.strip())
        if len(expression.split()) != 5:
            raise ScheduleError(f"spec.schedule: {schedule!r} is not five cron fields")
        try:
            CronSim(expression, datetime.now(zone))
        except CronSimError as exc:
            raise ScheduleError(f"spec.schedule: {schedule!r}: {exc}") from exc
        return cls(expression, zone)

    def next_after(self, moment: datetime) -> datetime:
        """The first scheduled time strictly after ``moment``."""
        return next(self._forward(moment))

    def latest_until(self, moment: datetime) -> datetime | None:
        """The last scheduled time at or before ``moment`` (None if there never was one)."""
        # cronsim's reverse iteration starts strictly before its start: start just past the
        # minute ``moment`` is in, so a time equal to ``moment`` counts.
        start = moment.astimezone(self.zone).replace(second=0, microsecond=0)
        try:
            found = next(CronSim(self.expression, start + timedelta(seconds=1), reverse=True))
        except StopIteration:
            return None
        return found.astimezone(UTC)

    def count_between(self, after: datetime, until: datetime, limit: int) -> int:
        """How many scheduled times fall in (after, until], counting at most ``limit``."""
        due = takewhile(lambda t: t <= until, self._forward(after))
        return sum(1 for _ in islice(due, limit))

    def _forward(self, moment: datetime) -> Iterator[datetime]:
        for found in CronSim(self.expression, moment.astimezone(self.zone)):
            yield found.astimezone(UTC)
