"""The Kubernetes calls of schedules: children created once, listed by label, status written."""

from __future__ import annotations

import httpx
import pytest

from dli_operator.kubeapi import KubeApi, KubeApiError


def api(handler) -> KubeApi:
    client = httpx.AsyncClient(base_url="https://k8s.test", transport=httpx.MockTransport(handler))
    return KubeApi(client)


async def test_creating_a_child_that_exists_already_is_reported_not_raised() -> None:
    # AlreadyExists is how a schedule learns that a time already ran (issue 14).
    posted: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        posted.append(request.url.path)
        name = request.read().decode()
        return httpx.Response(409 if "taken" in name else 201, json={"message": "exists"})

    kube = api(handler)
    assert await kube.create_job("ns", {"metadata": {"name": "fresh"}}) is not None
    assert await kube.create_job("ns", {"metadata": {"name": "taken"}}) is None
    assert posted == ["/apis/dli.dev/v1alpha1/namespaces/ns/dlibatchjobs"] * 2


async def test_other_create_errors_are_raised_with_their_status() -> None:
    kube = api(lambda request: httpx.Response(403, json={"message": "forbidden"}))
    with pytest.raises(KubeApiError) as caught:
        await kube.create_job("ns", {"metadata": {"name": "x"}})
    assert caught.value.status == 403


async def test_children_are_listed_by_label_and_a_missing_schedule_reads_as_none() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/gone"):
            return httpx.Response(404, json={"message": "not found"})
        assert request.url.params["labelSelector"] == "dli.dev/schedule=nightly"
        return httpx.Response(200, json={"items": [{"metadata": {"name": "nightly-1"}}]})

    kube = api(handler)
    assert await kube.get_object("scheduleddlibatchjobs", "ns", "gone") is None
    items = await kube.list_jobs("ns", "dli.dev/schedule=nightly")
    assert [i["metadata"]["name"] for i in items] == ["nightly-1"]


async def test_a_schedule_status_goes_to_its_own_status_subresource() -> None:
    paths: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        paths.append(request.url.path)
        return httpx.Response(200, json={})

    await api(handler).patch_schedule_status("ns", "nightly", {})
    assert paths == ["/apis/dli.dev/v1alpha1/namespaces/ns/scheduleddlibatchjobs/nightly/status"]
