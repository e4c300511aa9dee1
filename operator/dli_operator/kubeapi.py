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

    async def delete_job(self, namespace: str, name: str, uid: str) -> None:
        """Delete one DliBatchJob, only if it is still the object with ``uid``."""
        url = f"{GROUP_PATH}/namespaces/{namespace}/dlibatchjobs/{name}"
        body = {"kind": "DeleteOptions", "apiVersion": "v1", "preconditions": {"uid": uid}}
        try:
            await self._send("DELETE", url, json=body)
        except KubeApiError as exc:
            if exc.status not in (404, 409):
                raise

    # --- ScheduledDliBatchJobs and their children ------------------------------------------

    async def get_object(self, plural: str, namespace: str, name: str) -> dict[str, Any] | None:
        """One object of this group, or None if it does not exist."""
        try:
            return await self._send("GET", f"{GROUP_PATH}/namespaces/{namespace}/{plural}/{name}")
        except KubeApiError as exc:
            if exc.status == 404:
                return None
            raise

    async def patch_schedule_status(
        self, namespace: str, name: str, status: dict[str, Any]
    ) -> dict[str, Any]:
        """Merge-patch a ScheduledDliBatchJob's status through its status subresource."""
        url = f"{GROUP_PATH}/namespaces/{namespace}/scheduleddlibatchjobs/{name}/status"
        return await self._send(
            "PATCH",
            url,
            json={"status": status},
            headers={"Content-Type": "application/merge-patch+json"},
        )

    async def list_jobs(self, namespace: str, selector: str) -> list[dict[str, Any]]:
        """The DliBatchJobs of a namespace that match a label selector."""
        url = f"{GROUP_PATH}/namespaces/{namespace}/dlibatchjobs"
        body = await self._send("GET", url, params={"labelSelector": selector})
        return list(body.get("items") or [])

    async def create_job(self, namespace: str, body: dict[str, Any]) -> bool:
        """Create a DliBatchJob; False if one of that name exists already (AlreadyExists)."""
        try:
            await self._send("POST", f"{GROUP_PATH}/namespaces/{namespace}/dlibatchjobs", json=body)
        except KubeApiError as exc:
            if exc.status == 409:
                return False
            raise
        return True

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
