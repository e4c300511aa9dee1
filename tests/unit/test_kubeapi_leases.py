"""The Kubernetes calls of shard membership: one coordination.k8s.io/v1 Lease per replica."""

from __future__ import annotations

import json

import httpx
import pytest

from dli_operator.kubeapi import KubeApi, KubeApiError

LEASES = "/apis/coordination.k8s.io/v1/namespaces/ops/leases"


def api(handler) -> KubeApi:
    client = httpx.AsyncClient(base_url="https://k8s.test", transport=httpx.MockTransport(handler))
    return KubeApi(client)


async def test_each_lease_call_uses_its_verb_and_path() -> None:
    seen: list[tuple[str, str, str]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append((request.method, request.url.path, request.url.query.decode()))
        if request.method == "GET" and request.url.path == LEASES:
            return httpx.Response(200, json={"items": [{"metadata": {"name": "r-a"}}]})
        return httpx.Response(200, json={"metadata": {"name": "r-a", "resourceVersion": "5"}})

    kube = api(handler)
    body = {"metadata": {"name": "r-a", "resourceVersion": "4"}, "spec": {}}
    assert (await kube.get_lease("ops", "r-a") or {})["metadata"]["resourceVersion"] == "5"
    await kube.create_lease("ops", body)
    await kube.replace_lease("ops", body)
    await kube.delete_lease("ops", "r-a")
    assert await kube.list_leases("ops", "dli.dev/shard-ring=r") == [{"metadata": {"name": "r-a"}}]
    assert seen == [
        ("GET", f"{LEASES}/r-a", ""),
        ("POST", LEASES, ""),
        ("PUT", f"{LEASES}/r-a", ""),
        ("DELETE", f"{LEASES}/r-a", ""),
        ("GET", LEASES, "labelSelector=dli.dev%2Fshard-ring%3Dr"),
    ]


async def test_a_missing_lease_reads_as_none_and_deleting_it_again_is_no_error() -> None:
    kube = api(lambda request: httpx.Response(404, json={"message": "not found"}))
    assert await kube.get_lease("ops", "r-a") is None
    await kube.delete_lease("ops", "r-a")


async def test_a_replace_over_a_changed_lease_is_a_conflict_with_its_status() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        sent = json.loads(request.read())
        assert sent["metadata"]["resourceVersion"] == "4"  # the precondition goes to the server
        return httpx.Response(409, json={"message": "the object has been modified"})

    with pytest.raises(KubeApiError) as caught:
        await api(handler).replace_lease(
            "ops", {"metadata": {"name": "r-a", "resourceVersion": "4"}}
        )
    assert caught.value.status == 409
