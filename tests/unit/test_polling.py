"""The shared batch view: one list call per queue and interval serves every job's poll."""

from __future__ import annotations

import asyncio

import pytest

from dli_operator.dli.models import BatchJob
from dli_operator.polling import INTEREST_EXPIRY_INTERVALS, START_SLACK_MS, BatchCache

INTERVAL = 10.0
A, B, C = (f"{n}a324461-d9d9-45da-a52a-3b3c7a3d809e" for n in "012")


class Clock:
    def __init__(self) -> None:
        self.now = 500.0

    def __call__(self) -> float:
        return self.now


class Lister:
    """DLI's list call, faked: records (queue, start_ms) and answers with the jobs it holds."""

    def __init__(self) -> None:
        self.jobs: dict[str, list[BatchJob]] = {}
        self.calls: list[tuple[str, int | None]] = []
        self.gate: asyncio.Event | None = None

    def put(self, queue: str, batch_id: str, state: str = "running") -> None:
        job = BatchJob.model_validate({"id": batch_id, "state": state, "queue": queue})
        self.jobs.setdefault(queue, []).append(job)

    async def __call__(self, queue: str, start_ms: int | None) -> list[BatchJob]:
        self.calls.append((queue, start_ms))
        if self.gate is not None:
            await self.gate.wait()
        return list(self.jobs.get(queue, []))


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def lister() -> Lister:
    found = Lister()
    for batch_id in (A, B, C):
        found.put("q1", batch_id)
    found.put("q2", A)
    return found


@pytest.fixture
def cache(lister: Lister, clock: Clock) -> BatchCache:
    return BatchCache(lister, INTERVAL, clock=clock)


async def poll_all(cache: BatchCache, *ids: str, queue: str = "q1") -> list[BatchJob | None]:
    return [await cache.lookup(queue, batch_id, None) for batch_id in ids]


async def states(cache: BatchCache, *ids: str) -> list[str | None]:
    return [str(job.state) if job else None for job in await poll_all(cache, *ids)]


async def test_one_list_call_serves_every_job_polled_in_an_interval(
    cache: BatchCache, lister: Lister, clock: Clock
) -> None:
    await poll_all(cache, A, B, C)
    clock.now += INTERVAL
    found = await poll_all(cache, A, B, C)
    clock.now += 5
    found += await poll_all(cache, A, B, C)
    assert [job.id if job else None for job in found] == [A, B, C] * 2
    assert len(lister.calls) == 2


async def test_a_job_first_polled_after_the_refresh_is_left_to_a_get(
    cache: BatchCache, lister: Lister
) -> None:
    assert [job.id if job else None for job in await poll_all(cache, A, B)] == [A, None]
    assert len(lister.calls) == 1


async def test_a_job_the_list_does_not_show_is_none(
    cache: BatchCache, lister: Lister, clock: Clock
) -> None:
    missing = "ffffffff-d9d9-45da-a52a-3b3c7a3d809e"
    assert await cache.lookup("q1", missing, None) is None
    clock.now += INTERVAL
    assert await cache.lookup("q1", missing, None) is None
    assert len(lister.calls) == 2


async def test_concurrent_lookups_share_one_refresh(cache: BatchCache, lister: Lister) -> None:
    lister.gate = asyncio.Event()
    lookups = [asyncio.ensure_future(cache.lookup("q1", i, None)) for i in (A, B, C)]
    await asyncio.sleep(0)
    assert len(lister.calls) == 1
    lister.gate.set()
    found = await asyncio.gather(*lookups)
    assert [job.id if job else None for job in found] == [A, B, C]
    assert len(lister.calls) == 1


@pytest.mark.parametrize(
    ("elapsed", "refreshes"),
    [
        pytest.param(0.8 * INTERVAL, 1, id="a view younger than the interval is reused"),
        pytest.param(0.9 * INTERVAL, 2, id="a view nearly an interval old is refreshed"),
        pytest.param(3 * INTERVAL, 2, id="a stale view is refreshed once"),
    ],
)
async def test_a_stale_view_is_refreshed(
    cache: BatchCache, lister: Lister, clock: Clock, elapsed: float, refreshes: int
) -> None:
    await poll_all(cache, A)
    clock.now += elapsed
    await poll_all(cache, A, A, A)
    assert len(lister.calls) == refreshes


async def test_a_refresh_shows_the_new_state(
    cache: BatchCache, lister: Lister, clock: Clock
) -> None:
    await poll_all(cache, A)
    lister.jobs["q1"] = []
    lister.put("q1", A, "success")
    assert await states(cache, A) == ["running"]
    clock.now += INTERVAL
    assert await states(cache, A) == ["success"]


async def test_queues_have_views_of_their_own(cache: BatchCache, lister: Lister) -> None:
    await poll_all(cache, A, queue="q1")
    await poll_all(cache, A, queue="q2")
    assert [queue for queue, _ in lister.calls] == ["q1", "q2"]


async def test_the_list_starts_at_the_oldest_job_of_interest_minus_the_slack(
    cache: BatchCache, lister: Lister, clock: Clock
) -> None:
    await cache.lookup("q1", A, 5_000_000)
    await cache.lookup("q1", B, 4_000_000)
    await cache.lookup("q1", C, None)
    clock.now += INTERVAL
    await cache.lookup("q1", A, 5_000_000)
    assert lister.calls == [("q1", 5_000_000 - START_SLACK_MS), ("q1", 4_000_000 - START_SLACK_MS)]


async def test_without_a_known_create_time_the_list_is_unfiltered(
    cache: BatchCache, lister: Lister
) -> None:
    await cache.lookup("q1", A, None)
    assert lister.calls == [("q1", None)]


async def test_a_job_nobody_asks_about_stops_widening_the_window(
    cache: BatchCache, lister: Lister, clock: Clock
) -> None:
    await cache.lookup("q1", A, 1_000_000)
    for _ in range(INTEREST_EXPIRY_INTERVALS + 1):
        clock.now += INTERVAL
        await cache.lookup("q1", B, 9_000_000)
    starts = [start for _, start in lister.calls]
    assert starts[1] == 1_000_000 - START_SLACK_MS, "still of interest one interval later"
    assert starts[-1] == 9_000_000 - START_SLACK_MS
    assert await cache.lookup("q1", A, None) is None, "its job is no longer kept"


async def test_a_forgotten_job_is_dropped_from_the_view_and_the_window(
    cache: BatchCache, lister: Lister, clock: Clock
) -> None:
    await cache.lookup("q1", A, 1_000_000)
    await cache.lookup("q1", B, 9_000_000)
    clock.now += INTERVAL
    await cache.lookup("q1", B, 9_000_000)
    cache.forget("q1", A)
    assert await cache.lookup("q1", A, None) is None
    clock.now += INTERVAL
    await cache.lookup("q1", B, 9_000_000)
    assert lister.calls[-1] == ("q1", 9_000_000 - START_SLACK_MS)


async def test_forgetting_in_an_unknown_queue_is_harmless(cache: BatchCache) -> None:
    cache.forget("nowhere", A)
    assert await cache.lookup("nowhere", A, None) is None


async def test_a_job_created_recently_is_kept_for_its_first_poll(
    lister: Lister, clock: Clock
) -> None:
    wall = 2_000_000.0
    cache = BatchCache(lister, INTERVAL, clock=clock, wall=lambda: wall)
    new = "3a324461-d9d9-45da-a52a-3b3c7a3d809e"
    old = "4a324461-d9d9-45da-a52a-3b3c7a3d809e"
    for batch_id, created_s in ((new, wall - INTERVAL), (old, wall - 3600)):
        job = {"id": batch_id, "state": "starting", "queue": "q1", "create_time": created_s * 1000}
        lister.jobs["q1"].append(BatchJob.model_validate(job))
    await poll_all(cache, A)
    assert [job.id if job else None for job in await poll_all(cache, new, old)] == [new, None]
    assert len(lister.calls) == 1, "served from the one refresh, no GET needed for the new job"


async def test_a_job_created_after_the_list_began_is_too_new_to_be_missing(
    lister: Lister, clock: Clock
) -> None:
    listed_from = 2_000_000_000.0
    cache = BatchCache(lister, INTERVAL, clock=clock, wall=lambda: listed_from / 1000)
    old = "5a324461-d9d9-45da-a52a-3b3c7a3d809e"
    lister.put("q1", old)
    await poll_all(cache, old)
    assert cache.too_new("q1", listed_from + 1)
    assert not cache.too_new("q1", listed_from - 1)
    assert not cache.too_new("q1", None)
    assert not cache.too_new("other-queue", listed_from + 1)


async def test_a_refresh_wakes_the_jobs_it_lists_final_but_not_the_one_asking(
    lister: Lister, clock: Clock
) -> None:
    woken: list[str] = []
    cache = BatchCache(lister, INTERVAL, clock=clock, wake=woken.append)
    for batch_id, key in ((A, "ns/a"), (B, "ns/b"), (C, "ns/c")):
        await cache.lookup("q1", batch_id, None, key=key)
    assert woken == []  # all running
    lister.jobs["q1"] = []
    lister.put("q1", A, "success")
    lister.put("q1", B, "dead")
    lister.put("q1", C, "running")
    clock.now += INTERVAL
    await cache.lookup("q1", A, None, key="ns/a")  # A's poll refreshes: it reads success itself
    assert woken == ["ns/b"]


async def test_a_job_that_left_is_not_woken(lister: Lister, clock: Clock) -> None:
    woken: list[str] = []
    cache = BatchCache(lister, INTERVAL, clock=clock, wake=woken.append)
    await cache.lookup("q1", A, None, key="ns/a")
    await cache.lookup("q1", B, None)  # asked with no key: nobody to wake
    cache.forget("q1", A)
    lister.jobs["q1"] = []
    lister.put("q1", A, "success")
    lister.put("q1", B, "success")
    clock.now += INTERVAL
    await cache.lookup("q1", C, None, key="ns/c")
    assert woken == []
