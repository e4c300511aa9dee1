"""Shard membership against the real API server: three replicas in one event loop converge on
one ring, a replica that dies without a word is dropped once its Lease expires and rejoins, and
one that leaves is dropped at once. Lease times are short (3 s, renewed every 0.5 s)."""

from __future__ import annotations

import asyncio
import base64
import ssl
import time
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from dli_operator.kubeapi import KubeApi
from dli_operator.shards.membership import Membership

LEASE, RENEW = 3.0, 0.5
NAMES = ("replica-a", "replica-b", "replica-c")


def _kube_api(kubeconfig: Path, workdir: Path) -> KubeApi:
    """A KubeApi with the kubeconfig's admin client certificate (what kopf's login would do)."""
    cfg = yaml.safe_load(kubeconfig.read_text())
    cluster, user = cfg["clusters"][0]["cluster"], cfg["users"][0]["user"]
    context = ssl.create_default_context(
        cadata=base64.b64decode(cluster["certificate-authority-data"]).decode()
    )
    cert, key = workdir / "client.crt", workdir / "client.key"
    cert.write_bytes(base64.b64decode(user["client-certificate-data"]))
    key.write_bytes(base64.b64decode(user["client-key-data"]))
    context.load_cert_chain(cert, key)
    client = httpx.AsyncClient(base_url=cluster["server"], verify=context, timeout=10.0)
    return KubeApi(client)


@pytest.fixture
async def kube_api(kube: Any, tmp_path: Path) -> AsyncIterator[KubeApi]:
    api = _kube_api(kube.kubeconfig, tmp_path)
    yield api
    await api.aclose()


async def _until(condition: Callable[[], bool], within: float, what: str) -> float:
    """Seconds until ``condition`` held; fails after ``within`` seconds."""
    start = time.monotonic()
    while not condition():
        assert time.monotonic() - start < within, f"not within {within}s: {what}"
        await asyncio.sleep(0.05)
    return time.monotonic() - start


async def test_replicas_converge_drop_a_dead_one_after_its_lease_and_take_it_back(
    kube_api: KubeApi, namespace: str
) -> None:
    ring = f"shards-{uuid.uuid4().hex[:6]}"
    members = {
        name: Membership(
            kube_api,
            identity=name,
            namespace=namespace,
            ring=ring,
            lease_seconds=LEASE,
            renew_seconds=RENEW,
        )
        for name in NAMES
    }
    a, b, c = members.values()
    tasks = {name: asyncio.create_task(m.run()) for name, m in members.items()}
    try:
        await _until(lambda: all(m.members == NAMES for m in members.values()), 10, "converged")
        keys = [f"team/job-{i}" for i in range(300)]
        assert all(len({m.owner(k) for m in members.values()}) == 1 for k in keys)
        assert sum(1 for k in keys for m in members.values() if m.owns(k)) == len(keys)

        tasks["replica-c"].cancel()  # dies: no leave(), its Lease stays until it expires
        gone = await _until(
            lambda: a.members == b.members == ("replica-a", "replica-b"), 10, "c dropped"
        )
        assert gone > LEASE - 2 * RENEW, f"dropped after {gone:.1f}s, before its lease ran out"
        assert not c.member, "a replica whose lease ran out still counts itself"
        assert not any(c.owns(k) for k in keys)

        tasks["replica-c"] = asyncio.create_task(c.run())
        await _until(lambda: all(m.members == NAMES for m in members.values()), 10, "c back")

        await b.leave()
        left = await _until(
            lambda: a.members == c.members == ("replica-a", "replica-c"), 10, "b left"
        )
        assert left < LEASE - RENEW, f"a replica that left was dropped only after {left:.1f}s"
        await tasks["replica-b"]  # run() ends after leave()
    finally:
        for task in tasks.values():
            task.cancel()
        await asyncio.gather(*tasks.values(), return_exceptions=True)
    stored = await kube_api.list_leases(namespace, f"dli.dev/shard-ring={ring}")
    assert sorted(lease["metadata"]["name"] for lease in stored) == [
        f"{ring}-replica-a",
        f"{ring}-replica-c",
    ]
    spec = stored[0]["spec"]
    assert spec["holderIdentity"] == "replica-a"
    assert spec["leaseDurationSeconds"] == 3
    assert spec["renewTime"].endswith("Z")
    assert len(spec["renewTime"]) == len("2026-12-03T00:00:00.000000Z")
