"""The engine's controller with a fake driver and Kubernetes: what is stepped, when, by whom."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from dli_operator.engine import controller, lane
from dli_operator.engine.cache import Finished
from dli_operator.engine.controller import FINALIZER, Engine
from dli_operator.kubeapi import KubeApiError


class FakeLedger:
    def __init__(self) -> None:
        self.forgotten: list[str] = []

    def forget(self, uid: str) -> None:
        self.forgotten.append(uid)


class FakeDriver:
    def __init__(self) -> None:
        self.ledger = FakeLedger()
        self.steps: list[str] = []
        self.finalized: list[str] = []
        self.delay: float | None = 10.0
        self.finalize_delay: float | None = None
        self.owned_at_step: list[bool] = []
        self.waits: list[tuple[str, str]] = []
        self.crash = False

    async def step(self, body: Mapping[str, Any], announce: Any, *, owned: Callable[[], bool]):
        if self.crash:
            raise RuntimeError("a bug")
        self.steps.append(body["metadata"]["name"])
        self.owned_at_step.append(owned())
        return self.delay

    async def finalize(self, body: Mapping[str, Any], announce: Any) -> float | None:
        self.finalized.append(body["metadata"]["name"])
        return self.finalize_delay

    async def show_wait(self, body: Mapping[str, Any], announce: Any, message: str) -> None:
        self.waits.append((body["metadata"]["name"], message))


class FakeKube:
    def __init__(self) -> None:
        self.finalizer_writes: list[tuple[str, list[str]]] = []
        self.conflicts = 0
        self.deleted: list[str] = []
        self.objects: dict[str, dict[str, Any]] = {}

    async def set_finalizers(self, namespace, name, finalizers, *, resource_version):
        if self.conflicts:
            self.conflicts -= 1
            raise KubeApiError("conflict", 409)
        self.finalizer_writes.append((name, finalizers))
        body = self.objects[name]
        body["metadata"] = {
            **body["metadata"],
            "finalizers": finalizers,
            "resourceVersion": str(int(resource_version) + 1),
        }
        return body

    async def get_object(self, plural, namespace, name):
        return self.objects.get(name)

    async def delete_job(self, namespace, name, uid):
        self.deleted.append(name)


class FakeEvents:
    def post(self, *args: Any) -> None:
        pass


class Shards:
    def __init__(self, mine: set[str] | None = None) -> None:
        self.mine = mine
        self.fresh = True
        self.callbacks: list[Callable[[], None]] = []

    def assigned(self, key: str) -> bool:
        return self.mine is None or key in self.mine

    def owns(self, key: str) -> bool:
        return self.assigned(key) and self.fresh

    def on_change(self, callback: Callable[[], None]) -> None:
        self.callbacks.append(callback)


def job(name: str, *, phase: str | None = None, **extra: Any) -> dict[str, Any]:
    meta = {"namespace": "ns", "name": name, "uid": f"uid-{name}", "resourceVersion": "1"}
    meta.update(extra.pop("meta", {}))
    body = {"metadata": {**meta, "generation": 1}, "spec": extra.pop("spec", {}), "status": {}}
    if phase:
        body["status"]["phase"] = phase
    body["status"].update(extra.pop("status", {}))
    return body


@pytest.fixture
def parts() -> tuple[Engine, FakeDriver, FakeKube, Shards]:
    driver, kube, shards = FakeDriver(), FakeKube(), Shards()
    engine = Engine(driver, kube, FakeEvents(), workers=2, ownership=shards)  # type: ignore[arg-type]
    return engine, driver, kube, shards


def add(engine: Engine, kube: FakeKube, body: dict[str, Any], kind: str = "ADDED") -> None:
    kube.objects[body["metadata"]["name"]] = body
    engine.observe(kind, body)


async def test_a_new_job_gets_the_finalizer_then_one_step_and_its_timer(parts) -> None:
    engine, driver, kube, _ = parts
    add(engine, kube, job("a"))
    assert await engine.reconcile("ns/a") == 10.0
    assert kube.finalizer_writes == [("a", [FINALIZER])]
    assert driver.steps == ["a"]
    assert driver.owned_at_step == [True]


async def test_an_orphan_job_gets_no_finalizer(parts) -> None:
    engine, driver, kube, _ = parts
    add(engine, kube, job("a", spec={"deletionPolicy": "Orphan"}))
    await engine.reconcile("ns/a")
    assert kube.finalizer_writes == []
    assert driver.steps == ["a"]


async def test_a_finalizer_write_that_meets_a_change_reads_again_and_keeps_others(parts) -> None:
    engine, _, kube, _ = parts
    add(engine, kube, job("a", meta={"finalizers": ["other/keep"]}))
    kube.conflicts = 1
    await engine.reconcile("ns/a")
    assert kube.finalizer_writes == [("a", ["other/keep", FINALIZER])]


def test_only_changes_that_matter_make_a_key_due_now(parts) -> None:
    engine, _, kube, _ = parts
    body = job("a")
    add(engine, kube, body)
    assert engine.queue.due_in("ns/a") is not None  # new: due now
    engine.queue.discard("ns/a")
    status_only = job("a", status={"state": "running"}, meta={"resourceVersion": "2"})
    engine.observe("MODIFIED", status_only)
    assert engine.queue.due_in("ns/a") is None  # our own status write: the timer decides
    spec_change = job("a", meta={"resourceVersion": "3"})
    spec_change["metadata"]["generation"] = 2
    engine.observe("MODIFIED", spec_change)
    assert engine.queue.due_in("ns/a") is not None  # suspend, deadline, TTL: now
    engine.queue.discard("ns/a")
    deleting = job("a", meta={"resourceVersion": "4", "deletionTimestamp": "2026-01-01T00:00:00Z"})
    deleting["metadata"]["generation"] = 2
    engine.observe("MODIFIED", deleting)
    assert engine.queue.due_in("ns/a") is not None


def test_a_finished_job_is_a_small_record_with_no_timer_unless_a_ttl(parts) -> None:
    engine, _, kube, _ = parts
    add(engine, kube, job("done", phase="Succeeded"))
    assert isinstance(engine.cache.get("ns/done"), Finished)
    assert engine.queue.due_in("ns/done") is None
    finished = (datetime.now(UTC) - timedelta(seconds=5)).isoformat()
    ttl = job(
        "ttl",
        phase="Failed",
        spec={"ttlSecondsAfterFinished": 60},
        status={"completionTime": finished},
    )
    add(engine, kube, ttl)
    due = engine.queue.due_in("ns/ttl")
    assert due is not None
    assert 50 < due <= 55


async def test_an_expired_ttl_deletes_the_job(parts) -> None:
    engine, _, kube, _ = parts
    finished = (datetime.now(UTC) - timedelta(seconds=120)).isoformat()
    add(
        engine,
        kube,
        job(
            "old",
            phase="Succeeded",
            spec={"ttlSecondsAfterFinished": 60},
            status={"completionTime": finished},
        ),
    )
    assert await engine.reconcile("ns/old") is None
    assert kube.deleted == ["old"]


async def test_deletion_finalizes_then_lets_go(parts) -> None:
    engine, driver, kube, _ = parts
    body = job("a", meta={"finalizers": [FINALIZER], "deletionTimestamp": "2026-01-01T00:00:00Z"})
    add(engine, kube, body)
    driver.finalize_delay = 3.0  # a create that may still land: wait for it
    assert await engine.reconcile("ns/a") == 3.0
    assert kube.finalizer_writes == []
    driver.finalize_delay = None
    assert await engine.reconcile("ns/a") is None
    assert kube.finalizer_writes == [("a", [])]
    assert driver.steps == []


def test_a_deleted_object_leaves_nothing_behind(parts) -> None:
    engine, driver, kube, _ = parts
    add(engine, kube, job("a"))
    engine.observe("DELETED", job("a"))
    assert "ns/a" not in engine.cache
    assert engine.queue.due_in("ns/a") is None
    assert driver.ledger.forgotten == ["uid-a"]


async def test_a_key_another_shard_owns_is_never_stepped(parts) -> None:
    engine, driver, kube, shards = parts
    shards.mine = {"ns/mine"}
    add(engine, kube, job("mine"))
    add(engine, kube, job("theirs"))
    assert engine.queue.due_in("ns/theirs") is None
    assert await engine.reconcile("ns/theirs") is None
    await engine.reconcile("ns/mine")
    assert driver.steps == ["mine"]


async def test_a_membership_change_hands_keys_over_both_ways(parts) -> None:
    engine, driver, kube, shards = parts
    shards.mine = {"ns/a"}
    add(engine, kube, job("a"))
    add(engine, kube, job("b"))
    shards.mine = {"ns/b"}
    for callback in shards.callbacks:
        callback()
    assert engine.queue.due_in("ns/a") is None  # gone: no timer here any more
    assert driver.ledger.forgotten == ["uid-a"]  # nor its claims
    assert engine.queue.due_in("ns/b") is not None  # arrived: stepped here from now on
    await engine.reconcile("ns/b")
    assert driver.steps == ["b"]


async def test_the_fence_sees_ownership_end_during_a_step(parts) -> None:
    engine, driver, kube, shards = parts
    add(engine, kube, job("a"))
    seen: list[bool] = []

    async def step(body: Any, announce: Any, *, owned: Callable[[], bool]) -> float:
        seen.append(owned())
        shards.mine = set()  # the shard moved while the step waited for DLI
        seen.append(owned())
        return 1.0

    driver.step = step  # type: ignore[method-assign]
    await engine.reconcile("ns/a")
    assert seen == [True, False]


async def test_workers_retry_a_crashing_step_with_backoff_and_never_lose_the_key(parts) -> None:
    engine, driver, kube, _ = parts
    add(engine, kube, job("a", meta={"finalizers": [FINALIZER]}))
    driver.crash = True
    runner = asyncio.create_task(engine.run())
    await asyncio.sleep(0.1)
    due = engine.queue.due_in("ns/a")
    assert due is not None
    assert 0 < due <= 1.0
    driver.crash = False
    engine.queue.add("ns/a")
    await asyncio.sleep(0.1)
    assert driver.steps == ["a"]
    assert engine.queue.due_in("ns/a") == pytest.approx(10.0, abs=0.5)
    await engine.stop()
    runner.cancel()


async def test_a_replica_fenced_by_its_clock_keeps_its_keys_and_acts_once_renewed(parts) -> None:
    engine, driver, kube, shards = parts
    add(engine, kube, job("a", meta={"finalizers": [FINALIZER]}))
    shards.fresh = False  # its Lease may have expired (a SIGSTOP), the ring has not changed
    delay = await engine.reconcile("ns/a")
    assert delay is not None
    assert delay <= 5
    assert driver.steps == []
    engine.observe("MODIFIED", job("a", meta={"finalizers": [FINALIZER], "resourceVersion": "2"}))
    assert "ns/a" in engine._owned
    shards.fresh = True  # renewed, and still no ring change (no callback)
    await engine.reconcile("ns/a")
    assert driver.steps == ["a"]


async def test_a_backlog_of_submissions_never_takes_the_workers_polls_need(parts) -> None:
    engine, driver, kube, _ = parts  # 2 workers: a submit lane of 1
    release = asyncio.Event()
    polled: list[str] = []

    async def step(body: Any, announce: Any, *, owned: Callable[[], bool]) -> float:
        if body["status"].get("batchId"):
            polled.append(body["metadata"]["name"])
            return 60.0
        await release.wait()  # waiting for a DLI request slot
        driver.steps.append(body["metadata"]["name"])
        return 60.0

    driver.step = step  # type: ignore[method-assign]
    for n in range(5):
        add(engine, kube, job(f"new-{n}", meta={"finalizers": [FINALIZER]}))
    add(engine, kube, job("running", meta={"finalizers": [FINALIZER]}, status={"batchId": "b"}))
    runner = asyncio.create_task(engine.run())
    await asyncio.sleep(0.2)
    assert polled == ["running"]  # four submissions wait parked, not in a worker
    assert len(engine.lane) == 4
    release.set()
    await asyncio.sleep(0.2)
    assert sorted(driver.steps) == [f"new-{n}" for n in range(5)]
    assert not len(engine.lane)
    await engine.stop()
    runner.cancel()


async def test_a_key_parked_too_long_says_why_once_and_only_while_this_replica_owns_it(
    parts, monkeypatch
) -> None:
    # Issue 18 (chaos dli-storm): a parked key has no status to show a wait in; one parked much
    # longer than the DLI rate explains gets its wait written, at most once per renotice period.
    monkeypatch.setattr(lane, "NOTICE_AFTER_SECONDS", 0.05)
    monkeypatch.setattr(controller, "LANE_CHECK_SECONDS", 0.02)
    engine, driver, kube, shards = parts  # a submit lane of 1, no DLI rate set
    release = asyncio.Event()

    async def step(body: Any, announce: Any, *, owned: Callable[[], bool]) -> float:
        await release.wait()
        driver.steps.append(body["metadata"]["name"])
        return 60.0

    driver.step = step  # type: ignore[method-assign]
    shards.mine = {"ns/a", "ns/b", "ns/c"}  # ns/gone is another replica's
    for name in ("a", "b", "c"):
        add(engine, kube, job(name, meta={"finalizers": [FINALIZER]}))
    runner = asyncio.create_task(engine.run())
    await asyncio.sleep(0.02)
    shards.mine.discard("ns/c")
    for callback in shards.callbacks:
        callback()  # c moved away while parked: nothing is said on it
    await asyncio.sleep(0.3)
    assert [name for name, _ in driver.waits] == ["b"]
    assert "waiting for a DLI request slot: about" in driver.waits[0][1]
    assert "1 submissions ahead" in driver.waits[0][1]
    release.set()
    await asyncio.sleep(0.1)
    assert sorted(driver.steps) == ["a", "b"]
    await engine.stop()
    runner.cancel()


async def test_a_wake_makes_a_known_job_due_now_and_an_unknown_one_nothing(parts) -> None:
    engine, _, kube, _ = parts
    add(engine, kube, job("a", status={"batchId": "b-1"}))
    await engine.reconcile("ns/a")
    engine.queue.discard("ns/a")
    engine.queue.add("ns/a", 10.0)
    engine.wake("ns/a")
    engine.wake("ns/unknown")
    assert engine.queue.due_in("ns/a") == pytest.approx(0.0, abs=0.5)
    assert engine.queue.due_in("ns/unknown") is None
