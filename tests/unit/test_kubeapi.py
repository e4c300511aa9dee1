"""The operator's own Kubernetes calls: errors named, a rotated token picked up once."""

from __future__ import annotations

import httpx
import kopf
import pytest

from dli_operator.kubeapi import CREDENTIALS_TYPE, KubeApi, KubeApiError, Secret


def api(handler, relogin=None) -> KubeApi:
    client = httpx.AsyncClient(
        base_url="https://k8s.test",
        headers={"Authorization": "Bearer old"},
        transport=httpx.MockTransport(handler),
    )
    return KubeApi(client, relogin=relogin)


async def test_a_rejected_token_is_renewed_once_and_the_call_repeated() -> None:
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.headers["Authorization"])
        ok = request.headers["Authorization"] == "Bearer new"
        return httpx.Response(200 if ok else 401, json={"metadata": {"resourceVersion": "7"}})

    kube = api(handler, relogin=lambda: kopf.ConnectionInfo(server="https://k8s.test", token="new"))
    stored = await kube.patch_status("ns", "job", {"phase": "Running"})
    assert stored["metadata"]["resourceVersion"] == "7"
    assert seen == ["Bearer old", "Bearer new"]


async def test_without_a_way_to_renew_a_401_is_an_error_with_its_status() -> None:
    kube = api(lambda request: httpx.Response(401, json={"message": "Unauthorized"}))
    with pytest.raises(KubeApiError) as caught:
        await kube.patch_status("ns", "job", {})
    assert caught.value.status == 401
    assert "Unauthorized" in str(caught.value)


async def test_a_missing_secret_reads_as_none_and_a_present_one_keeps_its_type_and_bytes() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/absent"):
            return httpx.Response(404, json={"message": "not found"})
        # One value is binary (a keystore): reading the Secret must not try to decode it.
        data = {"accessKey": "QUs=", "keystore": "//4A"}
        return httpx.Response(200, json={"type": CREDENTIALS_TYPE, "data": data})

    kube = api(handler)
    assert await kube.read_secret("ns", "absent") is None
    assert await kube.read_secret("ns", "creds") == Secret(
        CREDENTIALS_TYPE, {"accessKey": b"AK", "keystore": b"\xff\xfe\x00"}
    )


async def test_the_plugin_calls_use_the_right_paths_and_patch_type() -> None:
    seen: list[tuple[str, str, str]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append((request.method, str(request.url), request.headers.get("content-type", "")))
        if request.url.path.endswith("/absent"):
            return httpx.Response(404, json={"message": "not found"})
        return httpx.Response(200, json={"items": [{"reason": "Running"}]})

    kube = api(handler)
    assert await kube.get_object("dlibatchjobs", "ns", "absent") is None
    assert await kube.list_events("ns", "u-1") == [{"reason": "Running"}]
    await kube.patch_job("ns", "etl", {"spec": {"suspend": True}})
    await kube.create_job("ns", {"metadata": {"generateName": "etl-"}})
    base = "https://k8s.test/apis/dli.dev/v1alpha1/namespaces/ns/dlibatchjobs"
    assert seen == [
        ("GET", f"{base}/absent", ""),
        (
            "GET",
            "https://k8s.test/api/v1/namespaces/ns/events?fieldSelector=involvedObject.uid%3Du-1",
            "",
        ),
        ("PATCH", f"{base}/etl", "application/merge-patch+json"),
        ("POST", base, "application/json"),
    ]
