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
import json
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx
import kopf

GROUP_PATH = "/apis/dli.dev/v1alpha1"
# Requests in flight at once, each on a kept-alive connection. Thousands of jobs starting
# together wait on a semaphore instead of in httpx's pool, which scans its whole queue on every
# request (quadratic), counts the wait against the 30 s timeout, and closes connections beyond
# its keep-alive limit only to open them again (a TLS handshake each): docs/benchmarks.md.
MAX_CONCURRENT_REQUESTS = 20


CREDENTIALS_TYPE = "dli.dev/credentials"
"""The Secret type that may hold DLI credentials; any other Secret is never sent (issue 11)."""


@dataclass(frozen=True)
class Secret:
    """A Secret as the operator sees it: its type, and its values undecoded."""

    type: str
    data: Mapping[str, bytes] = field(repr=False)


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
        self,
        namespace: str,
        name: str,
        status: dict[str, Any],
        *,
        resource_version: str | None = None,
    ) -> dict[str, Any]:
        """Merge-patch ``status`` through the status subresource; return the stored object.

        With ``resource_version`` the patch is conditional: the API server answers 409 if the
        object changed since that version (a merge patch carrying metadata.resourceVersion is
        an optimistic-concurrency precondition), which is how a claim on an attempt is fenced.
        """
        url = f"{GROUP_PATH}/namespaces/{namespace}/dlibatchjobs/{name}/status"
        body: dict[str, Any] = {"status": status}
        if resource_version is not None:
            body["metadata"] = {"resourceVersion": resource_version}
        return await self._send(
            "PATCH", url, json=body, headers={"Content-Type": "application/merge-patch+json"}
        )

    async def namespace_terminating(self, namespace: str) -> bool:
        """Whether ``namespace`` is being deleted (or already gone)."""
        body = await self._get_or_none(f"/api/v1/namespaces/{namespace}")
        if body is None:
            return True
        return bool((body.get("metadata") or {}).get("deletionTimestamp")) or (
            (body.get("status") or {}).get("phase") == "Terminating"
        )

    async def read_secret(self, namespace: str, name: str) -> Secret | None:
        """A Secret's type and raw values, or None if it does not exist.

        Values stay bytes: a Secret may hold binary values (a keystore), and only the caller
        knows which keys it uses and must decode (issue 10, item 10).
        """
        body = await self._get_or_none(f"/api/v1/namespaces/{namespace}/secrets/{name}")
        if body is None:
            return None
        data: dict[str, str] = body.get("data") or {}
        raw = {k: base64.b64decode(v) for k, v in data.items()}
        return Secret(str(body.get("type") or "Opaque"), raw)

    async def namespace_labels(self, name: str) -> dict[str, str]:
        """The labels of a namespace (for the default-credentials selector)."""
        body = await self._send("GET", f"/api/v1/namespaces/{name}")
        labels: dict[str, str] = (body.get("metadata") or {}).get("labels") or {}
        return labels

    async def delete_job(self, namespace: str, name: str, uid: str) -> None:
        """Delete one DliBatchJob, only if it is still the object with ``uid``."""
        url = f"{GROUP_PATH}/namespaces/{namespace}/dlibatchjobs/{name}"
        body = {"kind": "DeleteOptions", "apiVersion": "v1", "preconditions": {"uid": uid}}
        try:
            await self._send("DELETE", url, json=body)
        except KubeApiError as exc:
            if exc.status not in (404, 409):
                raise

    async def get_object(self, plural: str, namespace: str, name: str) -> dict[str, Any] | None:
        """One object of this group (a DliBatchJob, a schedule), or None if it does not exist."""
        return await self._get_or_none(f"{GROUP_PATH}/namespaces/{namespace}/{plural}/{name}")

    async def _get_or_none(self, url: str) -> dict[str, Any] | None:
        try:
            return await self._send("GET", url)
        except KubeApiError as exc:
            if exc.status == 404:
                return None
            raise

    async def create_job(self, namespace: str, body: dict[str, Any]) -> dict[str, Any] | None:
        """Create a DliBatchJob; the stored object (its generated name included), or None if
        one of that name exists already (AlreadyExists: a schedule's run was made before)."""
        try:
            return await self._send(
                "POST", f"{GROUP_PATH}/namespaces/{namespace}/dlibatchjobs", json=body
            )
        except KubeApiError as exc:
            if exc.status == 409:
                return None
            raise

    async def patch_job(self, namespace: str, name: str, patch: dict[str, Any]) -> dict[str, Any]:
        """Merge-patch a DliBatchJob (its operator fields: spec.suspend and the like)."""
        return await self._send(
            "PATCH",
            f"{GROUP_PATH}/namespaces/{namespace}/dlibatchjobs/{name}",
            json=patch,
            headers={"Content-Type": "application/merge-patch+json"},
        )

    async def list_events(self, namespace: str, uid: str) -> list[dict[str, Any]]:
        """The core/v1 Events about one object, as stored (oldest may have expired)."""
        body = await self._send(
            "GET",
            f"/api/v1/namespaces/{namespace}/events",
            params={"fieldSelector": f"involvedObject.uid={uid}"},
        )
        items: list[dict[str, Any]] = body.get("items") or []
        return items

    # --- the engine's informer, finalizer and Events (issue 18) ------------------------------

    async def list_objects(self, path: str, params: Mapping[str, Any]) -> dict[str, Any]:
        """One page of a LIST (``limit``/``continue`` in ``params``)."""
        return await self._send("GET", path, params=dict(params))

    async def watch_objects(
        self, path: str, params: Mapping[str, Any], *, read_seconds: float
    ) -> AsyncIterator[dict[str, Any]]:
        """The events of one WATCH, as they arrive; ends when the API server closes it.

        A watch holds its connection for minutes, so it takes no request slot (the slots bound
        short calls) and has its own read timeout, longer than the server-side one.
        """
        request = self._client.build_request(
            "GET", path, params=dict(params), timeout=httpx.Timeout(read_seconds, connect=5.0)
        )
        try:
            response = await self._client.send(request, stream=True)
        except httpx.HTTPError as exc:
            raise KubeApiError(f"WATCH {path}: {exc!r}") from exc
        try:
            if response.is_error:
                await response.aread()
                message = response.json().get("message", "") if _is_json(response) else ""
                raise KubeApiError(
                    f"WATCH {path}: {response.status_code} {message}", response.status_code
                )
            async for line in response.aiter_lines():
                if line.strip():
                    yield json.loads(line)
        except httpx.HTTPError as exc:
            raise KubeApiError(f"WATCH {path}: {exc!r}") from exc
        finally:
            await response.aclose()

    async def set_finalizers(
        self, namespace: str, name: str, finalizers: list[str], *, resource_version: str
    ) -> dict[str, Any]:
        """Store a DliBatchJob's finalizers, only if it is still at ``resource_version``."""
        patch = {"metadata": {"finalizers": finalizers, "resourceVersion": resource_version}}
        return await self.patch_job(namespace, name, patch)

    async def post_event(self, namespace: str, event: dict[str, Any]) -> None:
        """Create one core/v1 Event."""
        await self._send("POST", f"/api/v1/namespaces/{namespace}/events", json=event)

    # --- ScheduledDliBatchJobs and their children ------------------------------------------

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

    # --- Shard membership: one coordination.k8s.io/v1 Lease per replica (shards/membership.py) --

    _LEASES = "/apis/coordination.k8s.io/v1/namespaces/{namespace}/leases"

    async def get_lease(self, namespace: str, name: str) -> dict[str, Any] | None:
        """One Lease, or None if it does not exist."""
        return await self._get_or_none(self._LEASES.format(namespace=namespace) + f"/{name}")

    async def create_lease(self, namespace: str, body: dict[str, Any]) -> dict[str, Any]:
        """Create a Lease; a 409 (it exists) is raised for the caller to read and replace."""
        return await self._send("POST", self._LEASES.format(namespace=namespace), json=body)

    async def replace_lease(self, namespace: str, body: dict[str, Any]) -> dict[str, Any]:
        """Replace a Lease; with ``metadata.resourceVersion`` in ``body`` a changed one is a 409."""
        name = body["metadata"]["name"]
        url = self._LEASES.format(namespace=namespace) + f"/{name}"
        return await self._send("PUT", url, json=body)

    async def delete_lease(self, namespace: str, name: str) -> None:
        """Delete a Lease; one already gone is not an error."""
        try:
            await self._send("DELETE", self._LEASES.format(namespace=namespace) + f"/{name}")
        except KubeApiError as exc:
            if exc.status != 404:
                raise

    async def list_leases(self, namespace: str, selector: str) -> list[dict[str, Any]]:
        """The Leases of a namespace that match a label selector."""
        url = self._LEASES.format(namespace=namespace)
        body = await self._send("GET", url, params={"labelSelector": selector})
        return list(body.get("items") or [])


def _is_json(response: httpx.Response) -> bool:
    return str(response.headers.get("content-type", "")).startswith("application/json")
