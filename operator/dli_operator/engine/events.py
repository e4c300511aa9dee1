"""Kubernetes Events about our objects, posted in the background.

A step never waits for an Event: it hands it to a bounded queue that a few tasks drain. An
Event that cannot be posted is logged and dropped (Events are best effort in Kubernetes too);
a full queue drops the newest, so a storm costs bounded memory. Messages arrive masked
(``dli.errors.mask_credentials``) and are cut to the API server's 1 KiB note limit.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from dli_operator.kubeapi import KubeApi, KubeApiError

logger = logging.getLogger(__name__)

COMPONENT = "dli-operator"
QUEUE_LIMIT = 10_000
POSTERS = 4
MESSAGE_LIMIT = 1024


def event_for(
    obj: Mapping[str, Any], kind: str, reason: str, message: str, *, instance: str, now: datetime
) -> dict[str, Any]:
    """The core/v1 Event saying ``reason: message`` about ``obj`` (a DliBatchJob's body)."""
    meta = obj.get("metadata") or {}
    stamp = now.strftime("%Y-%m-%dT%H:%M:%SZ")
    return {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {
            "generateName": f"{meta.get('name', 'object')}.",
            "namespace": meta.get("namespace"),
        },
        "involvedObject": {
            "apiVersion": obj.get("apiVersion", "dli.dev/v1alpha1"),
            "kind": obj.get("kind", "DliBatchJob"),
            "name": meta.get("name"),
            "namespace": meta.get("namespace"),
            "uid": meta.get("uid"),
        },
        "type": kind,
        "reason": reason,
        "message": message[:MESSAGE_LIMIT],
        "source": {"component": COMPONENT},
        "reportingComponent": COMPONENT,
        "reportingInstance": instance,
        "firstTimestamp": stamp,
        "lastTimestamp": stamp,
        "count": 1,
    }


class EventPoster:
    """Posts Events from a bounded queue; ``post`` never blocks."""

    def __init__(self, kube: KubeApi, *, instance: str = COMPONENT) -> None:
        self._kube = kube
        self._instance = instance
        self._queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue(QUEUE_LIMIT)

    def post(self, obj: Mapping[str, Any], kind: str, reason: str, message: str) -> None:
        event = event_for(
            obj, kind, reason, message, instance=self._instance, now=datetime.now(UTC)
        )
        try:
            self._queue.put_nowait(event)
        except asyncio.QueueFull:
            logger.warning(
                "Event queue full; dropped %s for %s", reason, event["involvedObject"]["name"]
            )

    async def run(self) -> None:
        """Drain the queue until cancelled."""
        await asyncio.gather(*(self._drain() for _ in range(POSTERS)))

    async def flush(self, seconds: float = 5.0) -> None:
        """Wait (a little) for queued Events, e.g. before the process exits."""
        try:
            await asyncio.wait_for(self._queue.join(), seconds)
        except TimeoutError:
            logger.info("%d Events not posted at exit", self._queue.qsize())

    async def _drain(self) -> None:
        while True:
            event = await self._queue.get()
            try:
                await self._kube.post_event(str(event["metadata"]["namespace"]), event)
            except KubeApiError as exc:
                logger.info("could not post Event %s: %s", event["reason"], exc)
            finally:
                self._queue.task_done()
