"""The few Kubernetes calls the operator makes itself, outside kopf's own patching.

kopf applies a handler's ``patch`` only after the handler returns, so a submission intent
written through it would not be stored when the POST to DLI goes out (DESIGN.md, Behaviour).
This module writes such status changes directly and synchronously, reads credential Secrets
on use (so rotation needs no restart and no cluster-wide watch), and deletes finished jobs
whose TTL expired. It reuses the connection kopf logged in with.
"""

from __future__ import annotations

import asyncio
import base64
from collections.abc import Callable
from typing import Any

import httpx
import kopf

GROUP_PATH = "/apis/dli.dev/v1alpha1"
PEERING_PATH = "/apis/kopf.dev/v1"
# Requests in flight at once, each on a kept-alive connection. Thousands of jobs starting
# together wait on a semaphore instead of in httpx's pool, which scans its whole queue on every
# request (quadratic), counts the wait against the 30 s timeout, and closes connections beyond
# its keep-alive limit only to open them again (a TLS handshake each): docs/benchmarks.md.
MAX_CONCURRENT_REQUESTS = 20


class KubeApiError(Exception):
    """A Kubernetes API call failed; ``status`` is the HTTP status (0 when none came back)."""

    def __init__(self, message: str, status: int = 0) -> None:
        super().__init__(message)
        self.status = status


class KubeApi:
    """An async Kubernetes client for status patches, Secret reads and deletes."""

    def __init__(
        self,
        client: httpx.AsyncClient,
        *,
        concurrency: int = MAX_CONCURRENT_REQUESTS,
        relogin: Callable[[], kopf.ConnectionInfo] | None = None,
    ) -> None:
        self._client = client
        self._slots = asyncio.Semaphore(concurrency)
        self._relogin = relogin

    @classmethod
    def from_connection(
        cls, info: kopf.ConnectionInfo, relogin: Callable[[], kopf.ConnectionInfo] | None = None
    ) -> KubeApi:
        """Build a client from the credentials kopf itself uses; ``relogin`` renews them."""
        headers = {"Accept": "application/json", **info.as_http_headers()}
        client = httpx.AsyncClient(
            base_url=info.server,
            headers=headers,
            verify=info.as_ssl_context(),
            timeout=httpx.Timeout(30.0, connect=5.0),
            limits=httpx.Limits(
                max_connections=MAX_CONCURRENT_REQUESTS,
                max_keepalive_connections=MAX_CONCURRENT_REQUESTS,
            ),
        )
        return cls(client, relogin=relogin)

    async def aclose(self) -> None:
        await self._client.aclose()

    async def patch_status(
        self, namespace: str, name: str, status: dict[str, Any]
    ) -> dict[str, Any]:
        """Merge-patch ``status`` through the status subresource; return the stored object."""
        url = f"{GROUP_PATH}/namespaces/{namespace}/dlibatchjobs/{name}/status"
        return await self._send(
            "PATCH",
            url,
            json={"status": status},
            headers={"Content-Type": "application/merge-patch+json"},
        )

    async def read_secret(self, namespace: str, name: str) -> dict[str, str] | None:
        """The decoded data of a Secret, or None if it does not exist."""
        try:
            body = await self._send("GET", f"/api/v1/namespaces/{namespace}/secrets/{name}")
        except KubeApiError as exc:
            if exc.status == 404:
                return None
            raise
        data: dict[str, str] = body.get("data") or {}
        return {k: base64.b64decode(v).decode() for k, v in data.items()}

    async def ensure_peering(self, name: str, namespace: str | None) -> bool:
        """Create kopf's peering object ``name`` unless it exists; True if this call created it.

        Cluster-wide operators use a ClusterKopfPeering, namespaced ones a KopfPeering per
        namespace. Read first: an operator whose RBAC predates ``create`` still starts when the
        object is there. A 404 on create means the peering CRD is not served (yet).
        """
        kind, plural = (
            ("KopfPeering", "kopfpeerings")
            if namespace
            else ("ClusterKopfPeering", "clusterkopfpeerings")
        )
        folder = f"{PEERING_PATH}/namespaces/{namespace}" if namespace else PEERING_PATH
        try:
            await self._send("GET", f"{folder}/{plural}/{name}")
            return False
        except KubeApiError as exc:
            if exc.status != 404:
                raise
        body = {"apiVersion": "kopf.dev/v1", "kind": kind, "metadata": {"name": name}}
        try:
            await self._send("POST", f"{folder}/{plural}", json=body)
        except KubeApiError as exc:
            if exc.status == 409:  # another replica created it in the meantime
                return False
            raise
        return True

    async def delete_job(self, namespace: str, name: str, uid: str) -> None:
        """Delete one DliBatchJob, only if it is still the object with ``uid``."""
        url = f"{GROUP_PATH}/namespaces/{namespace}/dlibatchjobs/{name}"
        body = {"kind": "DeleteOptions", "apiVersion": "v1", "preconditions": {"uid": uid}}
        try:
            await self._send("DELETE", url, json=body)
        except KubeApiError as exc:
            if exc.status not in (404, 409):
                raise

    async def _send(self, method: str, url: str, **kwargs: Any) -> dict[str, Any]:
        response = await self._request(method, url, **kwargs)
        if response.status_code == 401 and self._relogin is not None:
            # A ServiceAccount token is rotated by the kubelet: read the current one, once.
            self._client.headers.update(self._relogin().as_http_headers())
            response = await self._request(method, url, **kwargs)
        if response.is_error:
            message = response.json().get("message", "") if _is_json(response) else ""
            raise KubeApiError(
                f"{method} {url}: {response.status_code} {message}", response.status_code
            )
        result: dict[str, Any] = response.json()
        return result

    async def _request(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        try:
            async with self._slots:
                return await self._client.request(method, url, **kwargs)
        except httpx.HTTPError as exc:
            raise KubeApiError(f"{method} {url}: {exc!r}") from exc


def _is_json(response: httpx.Response) -> bool:
    return str(response.headers.get("content-type", "")).startswith("application/json")
