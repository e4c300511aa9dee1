"""List and watch one kind of object, feeding every change to a callback.

client-go's reflector in small: a paged LIST (so 100,000 objects never arrive as one reply),
then a WATCH from the list's resourceVersion with bookmarks; a watch that ends is resumed from
the last version seen, and one the API server no longer serves (410 Gone) is a new LIST, which
also reports the objects deleted meanwhile. Errors are logged and retried with a backoff: the
informer never gives up while the operator runs.
"""

from __future__ import annotations

import asyncio
import fnmatch
import logging
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from dli_operator.engine.cache import key_of
from dli_operator.kubeapi import GROUP_PATH, KubeApi, KubeApiError

logger = logging.getLogger(__name__)

# Page size of the LIST: large enough for few round trips, small enough to parse in passing.
PAGE_SIZE = 500
# How long the API server keeps one watch open; bookmarks keep the version fresh meanwhile.
WATCH_SECONDS = 300
RETRY_SECONDS = (1.0, 2.0, 5.0, 10.0)

Handler = Callable[[str, Mapping[str, Any]], None]
"""``handler(type, body)`` with the watch event type: ADDED, MODIFIED or DELETED."""


class Gone(Exception):
    """The API server no longer serves the version the watch asked for: LIST again."""


class Informer:
    """Keeps ``handler`` told of every object of ``plural`` in the served namespaces."""

    def __init__(
        self,
        kube: KubeApi,
        plural: str,
        handler: Handler,
        *,
        namespaces: Iterable[str] = (),
        page_size: int = PAGE_SIZE,
    ) -> None:
        self._kube = kube
        self._plural = plural
        self._handler = handler
        patterns = tuple(namespaces)
        # Exact names get a watch each; any pattern (team-*) needs the cluster-wide watch.
        exact = patterns and not any(set(p) & set("*?[") for p in patterns)
        self._paths = (
            [f"{GROUP_PATH}/namespaces/{ns}/{plural}" for ns in patterns]
            if exact
            else [f"{GROUP_PATH}/{plural}"]
        )
        self._patterns = () if exact else patterns
        self._page_size = page_size
        self._known: dict[str, set[str]] = {path: set() for path in self._paths}
        self.synced = asyncio.Event()
        self._listed: set[str] = set()

    async def run(self) -> None:
        """Watch every served path until cancelled."""
        await asyncio.gather(*(self._follow(path) for path in self._paths))

    async def _follow(self, path: str) -> None:
        version: str | None = None
        failures = 0
        while True:
            try:
                if version is None:
                    version = await self._relist(path)
                version = await self._watch(path, version)
                failures = 0
            except Gone:
                version = None
            except (KubeApiError, ValueError) as exc:
                if isinstance(exc, KubeApiError) and exc.status == 401:
                    version = None  # the LIST logs in again (a rotated token)
                delay = RETRY_SECONDS[min(failures, len(RETRY_SECONDS) - 1)]
                failures += 1
                logger.warning("watching %s failed (retry in %.0fs): %s", path, delay, exc)
                await asyncio.sleep(delay)

    async def _relist(self, path: str) -> str:
        """LIST ``path`` page by page; report every object, and those gone since last time."""
        seen: set[str] = set()
        token: str | None = None
        while True:
            params: dict[str, Any] = {"limit": self._page_size}
            if token:
                params["continue"] = token
            try:
                page = await self._kube.list_objects(path, params)
            except KubeApiError as exc:
                if exc.status == 410:  # the continue token expired: start over
                    seen, token = set(), None
                    continue
                raise
            for body in page.get("items") or []:
                if self._serves(body):
                    seen.add(key_of(body))
                    self._handler("ADDED", body)
            meta = page.get("metadata") or {}
            token = meta.get("continue")
            if not token:
                break
        for key in self._known[path] - seen:
            namespace, _, name = key.partition("/")
            self._handler("DELETED", {"metadata": {"namespace": namespace, "name": name}})
        self._known[path] = seen
        self._listed.add(path)
        if len(self._listed) == len(self._paths):
            self.synced.set()
        return str(meta.get("resourceVersion") or "")

    async def _watch(self, path: str, version: str) -> str:
        params = {
            "watch": "true",
            "resourceVersion": version,
            "allowWatchBookmarks": "true",
            "timeoutSeconds": str(WATCH_SECONDS),
        }
        async for event in self._kube.watch_objects(path, params, read_seconds=WATCH_SECONDS + 30):
            kind, body = str(event.get("type", "")), event.get("object") or {}
            if kind == "ERROR":
                if body.get("code") == 410:
                    raise Gone(str(body.get("message", "")))
                raise KubeApiError(f"watch {path}: {body.get('message', body)}", 0)
            version = str((body.get("metadata") or {}).get("resourceVersion") or version)
            if kind == "BOOKMARK" or not self._serves(body):
                continue
            key = key_of(body)
            if kind == "DELETED":
                self._known[path].discard(key)
            else:
                self._known[path].add(key)
            self._handler(kind, body)
        return version

    def _serves(self, body: Mapping[str, Any]) -> bool:
        if not self._patterns:
            return True
        namespace = str((body.get("metadata") or {}).get("namespace", ""))
        return any(fnmatch.fnmatchcase(namespace, pattern) for pattern in self._patterns)
