"""Seed finished DliBatchJobs before the operator starts (``bench/scale.py --seed-finished N``).

Each job is created (with the operator's finalizer already on it, as a previous operator would
have left it) and then given a final status through the status subresource: phase Succeeded,
state success, a batchId, one attempt, completionTime and the Complete/Ready conditions. The
batch ids do not exist in the emulator, so any DLI call the operator makes about a seeded job
answers 404 and shows in the emulator's outcomes. Requests go out concurrently over httpx.
"""

from __future__ import annotations

import asyncio
import ssl
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

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
    seconds = time.monotonic() - begin
    return {
        "jobs": count,
        "seconds": round(seconds, 1),
        "per_second": round(count / max(seconds, 1e-9), 1),
        "errors": errors,
        "concurrency": concurrency,
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
    context = ssl.create_default_context(cafile=str(pki / "ca.crt"))
    context.load_cert_chain(str(pki / "admin.crt"), str(pki / "admin.key"))
    async with httpx.AsyncClient(verify=context, limits=limits, timeout=120.0) as http:

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
