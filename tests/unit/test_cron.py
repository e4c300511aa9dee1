"""Schedule math on a fake clock: DST in a zone, February 29, macros in non-UTC zones, misses."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from dli_operator.cron import Cron, ScheduleError

NEW_YORK = ZoneInfo("America/New_York")


def local(zone: ZoneInfo, *args: int, fold: int = 0) -> datetime:
    return datetime(*args, tzinfo=zone, fold=fold).astimezone(UTC)  # type: ignore[misc]


def times(cron: Cron, start: datetime, count: int) -> list[datetime]:
    out = []
    for _ in range(count):
        start = cron.next_after(start)
        out.append(start)
    return out


def test_a_time_skipped_by_spring_forward_runs_right_after_the_jump() -> None:
    # 2025-03-09: New York jumps from 02:00 EST to 03:00 EDT; 02:30 does not exist that night.
    cron = Cron.parse("30 2 * * *", "America/New_York")
    got = times(cron, local(NEW_YORK, 2025, 3, 8, 12, 0), 3)
    assert got == [
        local(NEW_YORK, 2025, 3, 9, 3, 0),
        local(NEW_YORK, 2025, 3, 10, 2, 30),
        local(NEW_YORK, 2025, 3, 11, 2, 30),
    ]


def test_a_time_repeated_by_fall_back_runs_once() -> None:
    # 2025-11-02: 01:00-02:00 happens twice in New York; a nightly 01:30 job must run once.
    cron = Cron.parse("30 1 * * *", "America/New_York")
    got = times(cron, local(NEW_YORK, 2025, 11, 1, 12, 0), 2)
    assert got == [local(NEW_YORK, 2025, 11, 2, 1, 30), local(NEW_YORK, 2025, 11, 3, 1, 30)]


def test_an_hourly_schedule_skips_the_missing_hour_and_keeps_both_repeated_ones() -> None:
    cron = Cron.parse("@hourly", "America/New_York")
    spring = times(cron, local(NEW_YORK, 2025, 3, 9, 0, 30), 3)
    assert [t.hour for t in spring] == [6, 7, 8]  # 01:00 EST, 03:00 EDT, 04:00 EDT in UTC
    fall = times(cron, local(NEW_YORK, 2025, 11, 2, 0, 30), 3)
    assert [t.hour for t in fall] == [5, 6, 7]  # 01:00 EDT, 01:00 EST, 02:00 EST in UTC


def test_february_29_comes_every_four_years() -> None:
    cron = Cron.parse("0 12 29 2 *", "Europe/Paris")
    got = times(cron, datetime(2025, 1, 1, tzinfo=UTC), 2)
    assert got == [
        datetime(2028, 2, 29, 11, 0, tzinfo=UTC),
        datetime(2032, 2, 29, 11, 0, tzinfo=UTC),
    ]


def test_daily_means_local_midnight_in_the_schedule_zone() -> None:
    cron = Cron.parse("@daily", "Asia/Shanghai")
    assert cron.next_after(datetime(2026, 1, 1, 12, 0, tzinfo=UTC)) == datetime(
        2026, 1, 1, 16, 0, tzinfo=UTC
    )


def test_daily_stays_at_local_midnight_across_a_dst_change() -> None:
    cron = Cron.parse("@daily", "Europe/Berlin")
    got = times(cron, datetime(2026, 3, 28, 12, 0, tzinfo=UTC), 2)
    assert got == [
        datetime(2026, 3, 28, 23, 0, tzinfo=UTC),
        datetime(2026, 3, 29, 22, 0, tzinfo=UTC),
    ]


def test_without_a_zone_the_schedule_is_utc() -> None:
    assert Cron.parse("0 2 * * *").next_after(datetime(2026, 1, 1, tzinfo=UTC)) == datetime(
        2026, 1, 1, 2, 0, tzinfo=UTC
    )


def test_latest_until_counts_a_time_equal_to_now() -> None:
    cron = Cron.parse("*/5 * * * *")
    now = datetime(2026, 1, 1, 12, 5, tzinfo=UTC)
    assert cron.latest_until(now) == now
    assert cron.latest_until(now.replace(second=59)) == now
    assert cron.latest_until(now.replace(minute=4)) == datetime(2026, 1, 1, 12, 0, tzinfo=UTC)


def test_missed_times_are_counted_up_to_a_limit() -> None:
    cron = Cron.parse("* * * * *")
    start = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
    assert cron.count_between(start, start.replace(minute=7, second=30), 100) == 7
    assert cron.count_between(start, start.replace(hour=20), 100) == 100
    assert cron.count_between(start, start, 100) == 0


@pytest.mark.parametrize(
    ("schedule", "zone", "field"),
    [
        ("0 0 30 2 *", None, "spec.schedule"),
        ("* * * *", None, "spec.schedule"),
        ("@every 5m", None, "spec.schedule"),
        ("0 2 * * *", "Mars/Olympus_Mons", "spec.timeZone"),
    ],
)
def test_an_unusable_schedule_names_its_field(schedule: str, zone: str | None, field: str) -> None:
    with pytest.raises(ScheduleError, match=field):
        Cron.parse(schedule, zone)
