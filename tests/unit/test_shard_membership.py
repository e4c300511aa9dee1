"""Shard membership: the liveness rule as a table, and replicas over an in-memory Lease store.

Each replica gets its own fake monotonic clock, started hours apart from the others', so a
test passes only if no replica compares its clock with another's or with a Lease's renewTime.
"""

from __future__ import annotations

import asyncio
import copy
import re
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from prometheus_client import REGISTRY

from dli_operator.kubeapi import KubeApiError
from dli_operator.shards import leases
from dli_operator.shards.leases import Sighting
from dli_operator.shards.membership import Membership

NS, RING = "dli-operator-system", "dli-operator"
LEASE, RENEW = 15.0, 5.0
KEYS = [f"team/job-{i}" for i in range(300)]


class Store:
    """The API server's Leases: resourceVersions, 409 on a stale one, 404 on a missing one."""

    def __init__(self) -> None:
        self.leases: dict[str, dict[str, Any]] = {}
        self._version = 0

    def put(self, body: dict[str, Any]) -> dict[str, Any]:
        self._version += 1
        stored = copy.deepcopy(body)
        stored["metadata"]["resourceVersion"] = str(self._version)
        self.leases[stored["metadata"]["name"]] = stored
        return copy.deepcopy(stored)


class FakeLeases:
    """One replica's connection to the store; ``down`` makes every call fail like a partition."""

    def __init__(self, store: Store) -> None:
        self.store, self.down = store, False

    def _check(self) -> None:
        if self.down:
            raise KubeApiError("GET leases: ConnectTimeout()")

    async def get_lease(self, namespace: str, name: str) -> dict[str, Any] | None:
        self._check()
        found = self.store.leases.get(name)
        return copy.deepcopy(found) if found else None

    async def create_lease(self, namespace: str, body: dict[str, Any]) -> dict[str, Any]:
        self._check()
        if body["metadata"]["name"] in self.store.leases:
            raise KubeApiError("POST leases: 409 AlreadyExists", 409)
        return self.store.put(body)

    async def replace_lease(self, namespace: str, body: dict[str, Any]) -> dict[str, Any]:
        self._check()
        current = self.store.leases.get(body["metadata"]["name"])
        if current is None:
            raise KubeApiError("PUT lease: 404 NotFound", 404)
        wanted = body["metadata"].get("resourceVersion")
        if wanted and wanted != current["metadata"]["resourceVersion"]:
            raise KubeApiError("PUT lease: 409 Conflict", 409)
        return self.store.put(body)

    async def delete_lease(self, namespace: str, name: str) -> None:
        self._check()
        self.store.leases.pop(name, None)

    async def list_leases(self, namespace: str, selector: str) -> list[dict[str, Any]]:
        self._check()
        key, value = selector.split("=")
        return [
            copy.deepcopy(lease)
            for lease in self.store.leases.values()
            if lease["metadata"]["labels"].get(key) == value
        ]


class Clock:
    def __init__(self, start: float) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now


class Replica:
    def __init__(self, store: Store, identity: str, start: float) -> None:
        self.kube, self.clock = FakeLeases(store), Clock(start)
        self.membership = Membership(
            self.kube,
            identity=identity,
            namespace=NS,
            ring=RING,
            lease_seconds=LEASE,
            renew_seconds=RENEW,
            monotonic=self.clock,
        )


def replicas(*names: str) -> tuple[Store, list[Replica]]:
    store = Store()
    # Monotonic clocks have arbitrary origins: each replica's starts hours from the others'.
    return store, [Replica(store, name, 10_000.0 * (i + 1)) for i, name in enumerate(names)]


async def rounds(group: list[Replica], seconds: float, *, step: float = RENEW) -> None:
    """Every replica in ``group`` renews and lists every ``step`` seconds for ``seconds``."""
    elapsed = 0.0
    while elapsed < seconds:
        for replica in group:
            await replica.membership.step()
        for replica in group:
            replica.clock.now += step
        elapsed += step


def owned(replica: Replica) -> set[str]:
    return {key for key in KEYS if replica.membership.owns(key)}


# --- The pure rules --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("sighting", "now", "live"),
    [
        (Sighting("1", changed_at=100.0, duration=15.0), 100.0, True),
        (Sighting("1", changed_at=100.0, duration=15.0), 114.9, True),
        (Sighting("1", changed_at=100.0, duration=15.0), 115.0, False),
        (Sighting("1", changed_at=100.0, duration=15.0), 500.0, False),
        (Sighting("1", changed_at=100.0, duration=60.0), 150.0, True),
    ],
)
def test_a_lease_is_live_while_it_changed_within_its_duration(
    sighting: Sighting, now: float, live: bool
) -> None:
    assert leases.is_live(sighting, now) is live


@pytest.mark.parametrize(
    ("previous", "version", "now", "changed_at"),
    [
        (None, "7/t1", 50.0, 50.0),  # first seen: its clock starts now, whatever renewTime says
        (Sighting("7/t1", 10.0, 15.0), "7/t1", 50.0, 10.0),  # unchanged: keeps its old time
        (Sighting("7/t1", 10.0, 15.0), "8/t2", 50.0, 50.0),  # renewed: restarts
    ],
)
def test_only_a_change_of_the_lease_restarts_its_clock(
    previous: Sighting | None, version: str, now: float, changed_at: float
) -> None:
    assert leases.observe(previous, version, 15.0, now).changed_at == changed_at


@pytest.mark.parametrize(
    ("renewed_at", "now", "fresh"),
    [
        (100.0, 100.0, True),
        (100.0, 113.4, True),  # 15 s lease less a 1.5 s margin
        (100.0, 113.5, False),
        (float("-inf"), 0.0, False),  # never renewed
    ],
)
def test_a_replica_counts_itself_only_while_its_renew_is_fresh(
    renewed_at: float, now: float, fresh: bool
) -> None:
    assert leases.fresh(renewed_at, now, LEASE) is fresh


def test_the_margin_is_a_tenth_of_the_lease_and_at_most_two_seconds() -> None:
    assert leases.fence_margin(15.0) == 1.5
    assert leases.fence_margin(60.0) == 2.0


def test_a_new_lease_is_named_labelled_and_stamped_in_micro_time() -> None:
    now = datetime(2026, 12, 3, tzinfo=UTC)
    body = leases.new_lease(ring=RING, identity="pod-0", namespace=NS, lease_seconds=2.5, now=now)
    assert body["metadata"] == {
        "name": "dli-operator-pod-0",
        "namespace": NS,
        "labels": {"dli.dev/shard-ring": RING},
    }
    assert body["spec"] == {
        "holderIdentity": "pod-0",
        "leaseDurationSeconds": 3,  # rounded up: never sooner than this replica fences itself
        "acquireTime": "2026-12-03T00:00:00.000000Z",
        "renewTime": "2026-12-03T00:00:00.000000Z",
    }
    later = leases.renewed(body, identity="pod-0", lease_seconds=2.5, now=now + timedelta(0, 1))
    assert later["spec"]["acquireTime"] == "2026-12-03T00:00:00.000000Z"
    assert later["spec"]["renewTime"] == "2026-12-03T00:00:01.000000Z"
    taken = leases.renewed(later, identity="pod-1", lease_seconds=2.5, now=now + timedelta(0, 2))
    assert taken["spec"]["acquireTime"] == "2026-12-03T00:00:02.000000Z"


# --- Replicas over the fake store ------------------------------------------------------------


async def test_two_replicas_see_each_other_and_split_the_keys() -> None:
    _, (a, b) = replicas("pod-0", "pod-1")
    await rounds([a, b], RENEW * 2)
    assert a.membership.members == b.membership.members == ("pod-0", "pod-1")
    assert owned(a)
    assert owned(b)
    assert owned(a) | owned(b) == set(KEYS)
    assert not owned(a) & owned(b)
    assert all(a.membership.owner(k) == b.membership.owner(k) for k in KEYS)


async def test_a_replica_counts_itself_before_any_list_shows_it() -> None:
    store, (a,) = replicas("pod-0")

    async def nothing(namespace: str, selector: str) -> list[dict[str, Any]]:
        raise KubeApiError("GET leases: 500", 500)

    a.kube.list_leases = nothing  # type: ignore[method-assign]
    await a.membership.step()
    assert a.membership.member
    assert a.membership.members == ("pod-0",)
    assert owned(a) == set(KEYS)
    assert "dli-operator-pod-0" in store.leases


async def test_a_replica_that_stops_renewing_is_dropped_after_its_lease_by_the_others_clock() -> (
    None
):
    _, (a, b) = replicas("pod-0", "pod-1")
    await rounds([a, b], RENEW * 2)
    b.kube.down = True  # b's renews stop reaching the store; a keeps going
    await a.membership.step()  # sees b's last renew: a's clock for b's Lease starts here
    last_seen = a.clock.now
    a.clock.now = last_seen + LEASE - 0.1
    await a.membership.step()
    assert a.membership.members == ("pod-0", "pod-1"), "dropped before its lease ran out"
    a.clock.now = last_seen + LEASE
    await a.membership.step()
    assert a.membership.members == ("pod-0",)
    assert owned(a) == set(KEYS)


async def test_leave_drops_a_replica_at_once_and_it_owns_nothing_from_then_on() -> None:
    _, (a, b) = replicas("pod-0", "pod-1")
    await rounds([a, b], RENEW * 2)
    await b.membership.leave()
    assert not b.membership.member
    assert owned(b) == set()
    await a.membership.step()  # no clock advance: the deleted Lease is gone on the next list
    assert a.membership.members == ("pod-0",)
    await b.membership.step()  # a late round of a replica that left does not bring it back
    await a.membership.step()
    assert a.membership.members == ("pod-0",)


async def test_a_replica_whose_renews_fail_for_its_lease_owns_nothing_until_one_succeeds() -> None:
    _, (a,) = replicas("pod-0")
    await a.membership.step()
    assert owned(a) == set(KEYS)
    a.kube.down = True
    a.clock.now += LEASE - leases.fence_margin(LEASE) - 0.1
    await a.membership.step()
    assert owned(a) == set(KEYS), "fenced while the lease surely holds"
    a.clock.now += 0.1
    assert not a.membership.member
    assert owned(a) == set()
    await a.membership.step()
    assert a.membership.members == ()
    a.kube.down = False
    await a.membership.step()
    assert a.membership.member
    assert owned(a) == set(KEYS)


async def test_a_stopped_process_owns_nothing_the_moment_it_resumes() -> None:
    """SIGSTOP: monotonic time keeps counting; ``owns`` must not wait for the next round."""
    _, (a, b) = replicas("pod-0", "pod-1")
    await rounds([a, b], RENEW * 2)
    assert owned(b)
    b.clock.now += 3600  # stopped for an hour; no step has run since
    assert not b.membership.member
    assert owned(b) == set()
    await b.membership.step()
    assert owned(b)


async def test_a_lease_that_keeps_changing_is_live_even_with_a_renew_time_an_hour_old() -> None:
    """The remote renewTime is never compared with the local clock: a skewed peer stays."""
    store, (a,) = replicas("pod-0")
    past = datetime.now(UTC) - timedelta(hours=1)
    skewed = leases.new_lease(
        ring=RING, identity="skewed", namespace=NS, lease_seconds=LEASE, now=past
    )
    store.put(skewed)
    for i in range(10):
        await a.membership.step()
        assert "skewed" in a.membership.members, f"dropped at round {i}"
        stored = store.leases["dli-operator-skewed"]
        store.put(leases.renewed(stored, identity="skewed", lease_seconds=LEASE, now=past))
        a.clock.now += RENEW


async def test_a_lease_that_stops_changing_expires_even_with_a_renew_time_in_the_future() -> None:
    store, (a,) = replicas("pod-0")
    future = datetime.now(UTC) + timedelta(hours=1)
    store.put(
        leases.new_lease(ring=RING, identity="ahead", namespace=NS, lease_seconds=LEASE, now=future)
    )
    await rounds([a], LEASE)
    assert "ahead" in a.membership.members
    await rounds([a], RENEW)
    assert a.membership.members == ("pod-0",)


async def test_listeners_hear_every_change_and_a_failing_one_stops_nothing() -> None:
    _, (a, b) = replicas("pod-0", "pod-1")
    heard: list[tuple[str, ...]] = []

    def broken() -> None:
        raise RuntimeError("listener bug")

    a.membership.on_change(broken)
    a.membership.on_change(lambda: heard.append(a.membership.members))
    await rounds([a, b], RENEW * 2)
    assert heard == [("pod-0",), ("pod-0", "pod-1")]
    assert a.membership.changed_at == 10_000.0 + RENEW  # the round that first saw pod-1
    await b.membership.leave()
    await a.membership.step()
    assert heard[-1] == ("pod-0",)


async def test_the_gauges_show_this_replicas_membership() -> None:
    _, (a, b) = replicas("pod-0", "pod-1")
    await rounds([a, b], RENEW * 2)
    await a.membership.step()
    assert REGISTRY.get_sample_value("dli_operator_shard_members") == 2
    assert REGISTRY.get_sample_value("dli_operator_shard_member") == 1
    await a.membership.leave()
    assert REGISTRY.get_sample_value("dli_operator_shard_member") == 0


async def test_a_lease_changed_or_deleted_by_someone_else_is_read_again_and_renewed() -> None:
    store, (a,) = replicas("pod-0")
    await a.membership.step()
    name = "dli-operator-pod-0"
    before = store.leases[name]["metadata"]["resourceVersion"]
    store.put(store.leases[name])  # an admin's edit: a new resourceVersion
    a.clock.now += RENEW
    await a.membership.step()  # the stale replace is refused (409), then read and renewed
    assert int(store.leases[name]["metadata"]["resourceVersion"]) == int(before) + 2
    assert store.leases[name]["spec"]["holderIdentity"] == "pod-0"
    a.clock.now += LEASE - RENEW  # fresh only if that round's renew counted
    assert a.membership.member
    del store.leases[name]  # deleted behind its back: created again in the same round
    await a.membership.step()
    assert name in store.leases


async def test_run_survives_errors_and_ends_after_leave() -> None:
    store = Store()
    kube = FakeLeases(store)
    kube.down = True
    membership = Membership(
        kube, identity="pod-0", namespace=NS, ring=RING, lease_seconds=0.5, renew_seconds=0.01
    )
    task = asyncio.create_task(membership.run())
    await asyncio.sleep(0.05)
    assert not task.done()
    kube.down = False
    for _ in range(100):
        if membership.member:
            break
        await asyncio.sleep(0.01)
    assert membership.members == ("pod-0",)
    await membership.leave()
    await asyncio.wait_for(task, timeout=1)
    assert store.leases == {}


def test_a_member_needs_an_identity_and_a_renew_inside_its_lease() -> None:
    with pytest.raises(ValueError, match="identity"):
        Membership(FakeLeases(Store()), identity="", namespace=NS, ring=RING)
    with pytest.raises(ValueError, match="renew_seconds"):
        Membership(
            FakeLeases(Store()),
            identity="a",
            namespace=NS,
            ring=RING,
            lease_seconds=5,
            renew_seconds=5,
        )


def test_micro_time_has_six_fraction_digits_and_a_z() -> None:
    text = leases.micro_time(datetime(2026, 12, 3, 1, 2, 3, 45, tzinfo=UTC))
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z", text)
    assert text == "2026-12-03T01:02:03.000045Z"
