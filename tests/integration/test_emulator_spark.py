"""The spark back end's store without Spark itself: missing files, waiting for a slot, restarts.

Real Spark runs are in tests/e2e/test_spark_backend.py (and the SDK test); these need no Java.
The app is mounted in-process; ``store.tick()`` is the step the supervisor takes every 250 ms.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import httpx
import pytest

from dli_operator.emulator.clock import FakeClock
from dli_operator.emulator.config import EmulatorConfig, SparkConfig
from dli_operator.emulator.core import Emulator
from dli_operator.emulator.journal import Journal
from dli_operator.emulator.processes import SparkUnavailable, preflight
from dli_operator.emulator.sparkstore import LOST, SparkStore
from dli_operator.emulator.validation import ValidRequest, parse_create


@pytest.fixture
def emulator_config(emulator_config: EmulatorConfig, tmp_path: Path) -> EmulatorConfig:
    """The conftest's config on the spark back end; queue q1 has no slot."""
    spark = SparkConfig(tmp_path / "obs", tmp_path / "pkg", tmp_path / "work", 1, (("q1", 0),))
    return replace(emulator_config, spark=spark)


async def test_a_missing_file_ends_the_job_dead_with_the_reason_in_its_log(
    dli: httpx.AsyncClient, emulator: Emulator
) -> None:
    created = await dli.post("/batches", json={"file": "obs://b/gone.py", "queue": "default"})
    batch_id = created.json()["id"]
    assert created.json()["state"] == "starting"  # DLI finds a missing file after the create

    emulator.store.tick()

    shown = (await dli.get(f"/batches/{batch_id}")).json()
    assert (shown["state"], shown["appId"]) == ("dead", "")
    assert "obs://b/gone.py does not exist in OBS" in shown["log"][-1]
    page = (await dli.get(f"/batches/{batch_id}/log")).json()
    assert page["total"] == 1
    assert page["log"] == shown["log"]


async def test_a_job_waits_in_starting_while_its_queue_has_no_free_slot(
    dli: httpx.AsyncClient, emulator: Emulator
) -> None:
    batch_id = (await dli.post("/batches", json={"file": "obs://b/x.py", "queue": "q1"})).json()[
        "id"
    ]
    for _ in range(3):
        emulator.store.tick()
    assert (await dli.get(f"/batches/{batch_id}/state")).json()["state"] == "starting"
    listed = (await dli.get("/batches", params={"queue_name": "q1", "state": "starting"})).json()
    assert [job["id"] for job in listed["sessions"]] == [batch_id]

    assert (await dli.delete(f"/batches/{batch_id}")).json() == {"msg": "deleted"}
    emulator.store.tick()
    assert (await dli.get(f"/batches/{batch_id}/state")).json()["state"] == "dead"
    assert isinstance(emulator.store, SparkStore)
    assert not emulator.store.waiting["q1"]


def test_after_a_restart_a_job_that_was_running_is_dead_and_a_waiting_one_still_waits(
    emulator_config: EmulatorConfig, tmp_path: Path
) -> None:
    clock = FakeClock()
    journal = tmp_path / "state.jsonl"
    writer = Journal(journal)
    first = SparkStore(emulator_config, clock, writer)
    ran = first.create(_request("default"))
    waits = first.create(_request("q1"))
    # What the supervisor journals when it starts a job (the process itself is gone now).
    writer.append({"op": "launch", "id": ran.id, "at": first.now_ms()})
    writer.close()

    reopened = Journal(journal)
    again = SparkStore(emulator_config, clock, reopened)
    reopened.close()

    assert again.jobs[ran.id].state(again.now_ms()) == "dead"
    assert again.jobs[ran.id].stop_reason == LOST
    assert again.jobs[waits.id].state(again.now_ms()) == "starting"
    assert list(again.waiting["q1"]) == [waits.id]
    assert set(again.settled()) == {waits.id}
    third = SparkStore(emulator_config, clock, Journal(journal))  # the verdict is journaled
    assert third.jobs[ran.id].stop_reason == LOST


def _request(queue: str) -> ValidRequest:
    body = json.dumps({"file": "obs://b/x.py", "queue": queue}).encode()
    return parse_create(body, ("default", "q1"))


def test_the_spark_back_end_refuses_to_start_without_java_and_says_why(tmp_path: Path) -> None:
    cli = Path(sys.executable).with_name("dli-operator")
    env = {**os.environ, "JAVA_HOME": str(tmp_path / "no-java")}
    done = subprocess.run(
        [str(cli), "emulator", "--backend", "spark", "--port", "0"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1
    assert "the spark back end needs a Java 17+ runtime" in done.stderr
    assert "JAVA_HOME" in done.stderr


def test_without_pyspark_the_message_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    with pytest.raises(SparkUnavailable, match=re.escape("pip install 'dli-operator[spark]'")):
        preflight()
