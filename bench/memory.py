"""Bytes per live and per finished job in the engine's cache and queue, by tracemalloc.

    .venv/bin/python bench/memory.py            # N = 1,000 and 10,000

Imports the operator's engine in-process (``dli_operator.engine``: ``ObjectCache().upsert(body)``
keeps full bodies of unfinished jobs and a compact record of finished ones;
``WorkQueue().add(key, delay)``). Builds N synthetic DliBatchJob bodies first, as JSON, then
takes a tracemalloc snapshot before and after feeding them to a fresh cache and queue: each body
is parsed inside the window, as from a watch event, so only what the cache keeps is counted.
Exits 0 with a message when the engine does not exist yet.
"""

from __future__ import annotations

import argparse
import copy
import gc
import json
import os
import sys
import tracemalloc
from collections.abc import Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "operator"))
sys.path.insert(0, str(ROOT / "bench"))

from seed import final_status, seeded_manifest  # noqa: E402


def body(index: int, finished: bool) -> dict[str, Any]:
    """A DliBatchJob as the watch delivers it: metadata, spec and (if finished) a final status."""
    name = f"mem-{index:06d}"
    obj = copy.deepcopy(seeded_manifest(name))
    obj["metadata"].update(
        namespace="bench",
        uid=f"00000000-0000-0000-0000-{index:012d}",
        resourceVersion=str(1000 + index),
        generation=1,
        creationTimestamp="2026-01-01T00:00:00Z",
        annotations={"dli.dev/last-handled-configuration": '{"spec": {"queue": "default"}}'},
    )
    if finished:
        obj["status"] = final_status(index, "http://127.0.0.1:1", "0" * 32)
    else:
        obj["status"] = {"phase": "Pending", "observedGeneration": 1}
    return obj


def measure(count: int, finished: bool) -> dict[str, Any]:
    from dli_operator.engine.cache import ObjectCache  # type: ignore[import-not-found]
    from dli_operator.engine.queue import WorkQueue  # type: ignore[import-not-found]

    # Built first, as JSON (what the watch reads): each body is parsed inside the window, as a
    # watch event's would be, so what the cache keeps is counted and what it drops is not.
    raws = [json.dumps(body(i, finished)).encode() for i in range(count)]
    keys = [f"bench/mem-{i:06d}" for i in range(count)]
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.take_snapshot()
    cache, queue = ObjectCache(), WorkQueue()
    for raw, key in zip(raws, keys, strict=True):
        cache.upsert(json.loads(raw))
        if not finished:
            queue.add(key, delay=0.0)
    gc.collect()
    after = tracemalloc.take_snapshot()
    tracemalloc.stop()
    grown = sum(stat.size_diff for stat in after.compare_to(before, "filename"))
    top = after.compare_to(before, "lineno")[:3]
    return {
        "jobs": count,
        "kind": "finished" if finished else "live",
        "bytes": grown,
        "bytes_per_job": round(grown / count),
        "top": [str(stat) for stat in top],
        "objects": (type(cache).__name__, type(queue).__name__),
    }


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--jobs", type=int, nargs="+", default=[1000, 10000], help="N to measure")
    args = p.parse_args(argv)
    try:
        import dli_operator.engine.cache  # type: ignore[import-not-found]
        import dli_operator.engine.queue  # type: ignore[import-not-found]  # noqa: F401
    except ImportError as error:
        print(f"skipped: the engine is not there yet ({error}); bench/memory.py needs")
        print("dli_operator.engine.cache.ObjectCache and dli_operator.engine.queue.WorkQueue")
        return 0
    print(f"command: {' '.join([sys.executable, *sys.argv])}")
    print(f"machine: {os.cpu_count()} cores, Python {sys.version.split()[0]}, tracemalloc")
    for count in args.jobs:
        for finished in (False, True):
            r = measure(count, finished)
            print(f"{r['kind']:8} {r['jobs']:>7} jobs: {r['bytes_per_job']:>8} bytes per job")
            for line in r["top"]:
                print(f"           {line}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
