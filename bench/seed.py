"""Seed finished DliBatchJobs before the operator starts (``bench/scale.py --seed-finished N``).

Each job is created (with the operator's finalizer already on it, as a previous operator would
have left it) and then given a final status through the status subresource: phase Succeeded,
state success, a batchId, one attempt, completionTime and the Complete/Ready conditions. The
batch ids do not exist in the emulator, so any DLI call the operator makes about a seeded job
answers 404 and shows in the emulator's outcomes. Requests go out concurrently over httpx.

Through the API server, seeding runs at about 40 jobs/s on the 2-core machine (two requests a
job): 100,000 take 42 minutes. ``seed_etcd`` writes the same objects straight into the control
plane's etcd instead (its JSON gateway, ``/v3/kv/txn``, 100 objects per transaction), as the API
server itself stores a custom resource (JSON under ``/registry/<group>/<plural>/<ns>/<name>``);
the API server's watch cache reads them from etcd's watch like any write. Only for a bench
control plane: it bypasses admission and validation, which is the point of it here.
"""

from __future__ import annotations

import asyncio
import base64
import json
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from dli_operator import controlplane

GROUP, VERSION, PLURAL = "dli.dev", "v1alpha1", "dlibatchjobs"
FINALIZER = f"{GROUP}/finalizer"
ROLE_LABEL = "bench.dli.dev/role"  # "seeded" or "live": the bench's watch reads only "live"
SEED_PREFIX = "seed-"
FAILURES: list[str] = []  # the last error of each job that could not be seeded


def seeded_manifest(name: str) -> dict[str, Any]:
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "DliBatchJob",
        "metadata": {"name": name, "labels": {ROLE_LABEL: "seeded"}, "finalizers": [FINALIZER]},
        "spec": {
            "queue": "default",
            "file": "obs://bench/jars/spark-examples.jar",
            "className": "org.apache.spark.examples.SparkPi",
            "args": ["100"],
        },
    }


def final_status(index: int, endpoint: str, project_id: str) -> dict[str, Any]:
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    batch_id = f"00000000-seed-0000-0000-{index:012d}"
    condition = {"status": "True", "reason": "Succeeded", "lastTransitionTime": now}
    return {
        "batchId": batch_id,
        "appId": f"application_seed_{index:06d}",
        "state": "success",
        "queue": "default",
        "phase": "Succeeded",
        "observedGeneration": 1,
        "retries": 0,
        "attempts": [
            {
                "attempt": 1,
                "batchId": batch_id,
                "state": "success",
                "jobName": f"{SEED_PREFIX}{index:06d}-00000000-1",
                "submitTime": now,
                "finishTime": now,
            }
        ],
        "target": {"endpoint": endpoint, "projectId": project_id},
        "startTime": now,
        "completionTime": now,
        "conditions": [{"type": t, **condition} for t in ("Submitted", "Complete", "Ready")],
    }


def seed(
    server: str,
    pki: Path,
    namespace: str,
    count: int,
    *,
    endpoint: str,
    project_id: str,
    concurrency: int = 32,
) -> dict[str, Any]:
    """Create ``count`` finished jobs; return the seconds taken, the rate and the errors."""
    begin = time.monotonic()
    errors = asyncio.run(_seed(server, pki, namespace, count, endpoint, project_id, concurrency))
    return _summary(count, begin, errors, concurrency=concurrency)


def _summary(count: int, begin: float, errors: int, **how: Any) -> dict[str, Any]:
    """What a seeding took: seconds, jobs per second, errors (and the first three), and how."""
    seconds = time.monotonic() - begin
    return {
        "jobs": count,
        "seconds": round(seconds, 1),
        "per_second": round(count / max(seconds, 1e-9), 1),
        "errors": errors,
        **how,
        "first_errors": FAILURES[:3],
    }


async def _seed(
    server: str,
    pki: Path,
    namespace: str,
    count: int,
    endpoint: str,
    project_id: str,
    concurrency: int,
) -> int:
    base = f"{server}/apis/{GROUP}/{VERSION}/namespaces/{namespace}/{PLURAL}"
    names = iter(range(count))
    errors = 0
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    tls = controlplane.admin_context(pki)
    async with httpx.AsyncClient(verify=tls, limits=limits, timeout=120.0) as http:

        async def worker() -> None:
            nonlocal errors
            for index in names:
                if not await _one(http, base, index, endpoint, project_id):
                    errors += 1

        await asyncio.gather(*(worker() for _ in range(concurrency)))
    return errors


async def _one(
    http: httpx.AsyncClient, base: str, index: int, endpoint: str, project_id: str
) -> bool:
    name = f"{SEED_PREFIX}{index:06d}"
    status = {"status": final_status(index, endpoint, project_id)}
    last = ""
    for attempt in range(5):
        try:
            created = await http.post(base, json=seeded_manifest(name))
            if created.status_code not in (201, 409):  # 409: a retried create that went through
                created.raise_for_status()
            patched = await http.patch(
                f"{base}/{name}/status",
                json=status,
                headers={"Content-Type": "application/merge-patch+json"},
            )
            patched.raise_for_status()
            return True
        except httpx.HTTPStatusError as error:
            last = f"{error.response.status_code} {error.response.text[:300]}"
        except httpx.HTTPError as error:
            last = repr(error)
        await asyncio.sleep(0.2 * (attempt + 1))
    FAILURES.append(f"{name}: {last}")
    return False


# etcd's default --max-txn-ops is 128.
ETCD_TXN_OBJECTS = 100


def seed_etcd(
    etcd: str, namespace: str, count: int, *, endpoint: str, project_id: str
) -> dict[str, Any]:
    """``seed``'s objects, written straight into etcd at ``etcd`` (http://host:port)."""
    begin = time.monotonic()
    errors = 0
    with httpx.Client(base_url=etcd, timeout=120.0) as http:
        for first in range(0, count, ETCD_TXN_OBJECTS):
            puts = [
                _etcd_put(namespace, index, endpoint, project_id)
                for index in range(first, min(count, first + ETCD_TXN_OBJECTS))
            ]
            reply = http.post("/v3/kv/txn", json={"success": puts})
            if reply.status_code != 200:
                errors += len(puts)
                FAILURES.append(f"txn at {first}: {reply.status_code} {reply.text[:300]}")
    return _summary(count, begin, errors, via="etcd")


def _etcd_put(namespace: str, index: int, endpoint: str, project_id: str) -> dict[str, Any]:
    obj = seeded_manifest(f"{SEED_PREFIX}{index:06d}")
    obj["metadata"].update(
        namespace=namespace,
        uid=str(uuid.uuid4()),
        generation=1,
        creationTimestamp=datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
    )
    obj["status"] = final_status(index, endpoint, project_id)
    key = f"/registry/{GROUP}/{PLURAL}/{namespace}/{obj['metadata']['name']}"
    return {"requestPut": {"key": _b64(key), "value": _b64(json.dumps(obj))}}


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def await_seeded(
    server: str, pki: Path, namespace: str, count: int, timeout: float = 600.0
) -> None:
    """Wait until the API server lists ``count`` objects (what ``seed_etcd`` wrote, read back)."""
    url = f"{server}/apis/{GROUP}/{VERSION}/namespaces/{namespace}/{PLURAL}"
    deadline = time.monotonic() + timeout
    with httpx.Client(verify=controlplane.admin_context(pki), timeout=120.0) as http:
        while time.monotonic() < deadline:
            page = http.get(url, params={"limit": 1}).raise_for_status().json()
            listed = len(page["items"]) + int(page["metadata"].get("remainingItemCount") or 0)
            if listed >= count:
                return
            time.sleep(1.0)
    raise TimeoutError(f"the API server lists fewer than {count} seeded objects")
