"""The benchmark's own view of the jobs: it creates them and watches when each showed what."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from procs import FINAL
from seed import ROLE_LABEL

GROUP, VERSION, PLURAL = "dli.dev", "v1alpha1", "dlibatchjobs"
# The watch and the audit read only the live jobs, never the seeded finished ones.
LIVE_SELECTOR = f"{ROLE_LABEL}=live"


@dataclass
class Seen:
    created: float | None = None  # the create call returned (bench clock, epoch seconds)
    first_event: float | None = None
    batch_id: str | None = None
    submitted: float | None = None  # status.batchId first seen
    states: dict[str, float] = field(default_factory=dict)  # status.state -> first seen
    phases: dict[str, float] = field(default_factory=dict)  # status.phase -> first seen
    status_writes: int = 0  # watch events that changed status
    last_change: float | None = None  # the status last changed (the stranded-job sampler)


class Watcher(threading.Thread):
    """A watch on the namespace's DliBatchJobs, recording the first time each state was seen."""

    def __init__(self, api_client: Any, namespace: str) -> None:
        super().__init__(daemon=True, name="watch")
        from kubernetes import client

        self.api = client.CustomObjectsApi(api_client)
        self.namespace = namespace
        self.seen: dict[str, Seen] = {}
        self.lock = threading.Lock()
        self.halt = threading.Event()
        self.events = 0
        self.submitted = 0
        self.final = 0
        self._last_status: dict[str, Any] = {}

    def counts(self) -> tuple[int, int, int]:
        with self.lock:
            return len(self.seen), self.submitted, self.final

    def run(self) -> None:
        from kubernetes import watch
        from kubernetes.client.exceptions import ApiException

        rv = ""
        while not self.halt.is_set():
            w = watch.Watch()
            try:
                if not rv:
                    listing = self.api.list_namespaced_custom_object(
                        GROUP, VERSION, self.namespace, PLURAL, label_selector=LIVE_SELECTOR
                    )
                    for item in listing["items"]:
                        self._record(item, time.time())
                    rv = listing["metadata"]["resourceVersion"]
                for event in w.stream(
                    self.api.list_namespaced_custom_object,
                    GROUP,
                    VERSION,
                    self.namespace,
                    PLURAL,
                    label_selector=LIVE_SELECTOR,
                    resource_version=rv,
                    allow_watch_bookmarks=True,
                    timeout_seconds=300,
                ):
                    now = time.time()
                    obj = event["object"]
                    rv = obj["metadata"]["resourceVersion"]
                    if event["type"] in ("ADDED", "MODIFIED"):
                        self._record(obj, now)
                    if self.halt.is_set():
                        break
            except ApiException as exc:
                if exc.status == 410:
                    rv = ""  # too old: list again
                else:
                    time.sleep(0.5)
            except Exception:
                time.sleep(0.5)
            finally:
                w.stop()

    def _record(self, obj: dict[str, Any], now: float) -> None:
        name = obj["metadata"]["name"]
        status = obj.get("status") or {}
        with self.lock:
            self.events += 1
            seen = self.seen.setdefault(name, Seen())
            if seen.first_event is None:
                seen.first_event = now
            if status != self._last_status.get(name):
                seen.status_writes += 1
                seen.last_change = now
                self._last_status[name] = status
            if status.get("batchId") and seen.submitted is None:
                seen.submitted, seen.batch_id = now, status["batchId"]
                self.submitted += 1
            state, phase = status.get("state"), status.get("phase")
            if state and state not in seen.states:
                seen.states[state] = now
            if phase and phase not in seen.phases:
                seen.phases[phase] = now
                if phase in FINAL:
                    self.final += 1


def manifest(name: str) -> dict[str, Any]:
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "DliBatchJob",
        "metadata": {"name": name, "labels": {ROLE_LABEL: "live"}},
        "spec": {
            "queue": "default",
            "file": "obs://bench/jars/spark-examples.jar",
            "className": "org.apache.spark.examples.SparkPi",
            "args": ["100"],
        },
    }


def create_all(
    kubeconfig: Path, namespace: str, names: list[str], threads: int, watcher: Watcher | None
) -> tuple[float, float, int]:
    """Create the objects from ``threads`` threads; return (start, end, errors)."""
    from kubernetes import client, config

    local = threading.local()

    def api() -> Any:
        if not hasattr(local, "api"):
            cfg = client.Configuration()
            config.load_kube_config(str(kubeconfig), client_configuration=cfg)
            cfg.connection_pool_maxsize = 2
            local.api = client.CustomObjectsApi(client.ApiClient(cfg))
        return local.api

    errors = 0
    lock = threading.Lock()

    def create(name: str) -> None:
        nonlocal errors
        for attempt in range(5):
            try:
                api().create_namespaced_custom_object(
                    GROUP, VERSION, namespace, PLURAL, manifest(name)
                )
                break
            except client.exceptions.ApiException as exc:
                if exc.status == 409:  # a retry of a create that went through
                    break
                if attempt == 4:
                    with lock:
                        errors += 1
                    return
                time.sleep(0.2 * (attempt + 1))
        if watcher is not None:
            with watcher.lock:
                watcher.seen.setdefault(name, Seen()).created = time.time()

    begin = time.time()
    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(create, names))
    return begin, time.time(), errors
