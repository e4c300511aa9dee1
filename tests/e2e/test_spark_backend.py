"""DliBatchJobs run for real: the operator, the real API server, and the emulator's spark back end.

Each job is a PySpark script placed under the emulator's OBS root (``obs://data/...``), run by
spark-submit in local mode. Skipped, with the reason, where pyspark or Java 17+ is missing.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from dli_operator.emulator.processes import SparkUnavailable, batch_pids, preflight


def _missing() -> str:
    try:
        preflight()
    except SparkUnavailable as error:
        return str(error)
    return ""


MISSING = _missing()
pytestmark = pytest.mark.skipif(bool(MISSING), reason=f"no local Spark: {MISSING}")

SPARK_TIMEOUT = 180.0  # one JVM plus a Python driver on a busy 2-core machine
WORDCOUNT = """\
import sys
from pyspark.sql import SparkSession

spark = SparkSession.builder.getOrCreate()
words = spark.sparkContext.textFile(sys.argv[1]).flatMap(str.split)
counts = words.map(lambda word: (word, 1)).reduceByKey(lambda a, b: a + b, 1)
counts.map(lambda pair: f"{pair[0]} {pair[1]}").saveAsTextFile(sys.argv[2])
spark.stop()
"""
FAILS = """\
from pyspark.sql import SparkSession

spark = SparkSession.builder.getOrCreate()
raise RuntimeError("no input for " + spark.sparkContext.appName)
"""
SLEEPS = """\
import sys
import time
from pyspark.sql import SparkSession

spark = SparkSession.builder.getOrCreate()
print("ready", flush=True)
time.sleep(float(sys.argv[1]))
spark.stop()
"""


@pytest.fixture
def obs(tmp_path: Path) -> Path:
    """The emulator's OBS root, with the scripts in ``obs://data/jobs/``."""
    root = tmp_path / "obs"
    (root / "data" / "jobs").mkdir(parents=True)
    for name, script in (("wordcount", WORDCOUNT), ("fails", FAILS), ("sleeps", SLEEPS)):
        (root / "data" / "jobs" / f"{name}.py").write_text(script)
    return root


@pytest.fixture
def emulator_args(obs: Path, tmp_path: Path) -> list[str]:
    # Two jobs at once on the default queue, one at a time on q1.
    return [
        "--backend=spark",
        f"--obs-root={obs}",
        f"--spark-workdir={tmp_path / 'spark'}",
        "--queue-slots=2,q1=1",
    ]


def test_a_pyspark_word_count_writes_its_output_under_the_obs_root(jobs, operator, obs):
    (obs / "data" / "in").mkdir()
    (obs / "data" / "in" / "a.txt").write_text("to be or not to be\n")
    (obs / "data" / "in" / "b.txt").write_text("be quick\n")
    args = ["obs://data/in/", "obs://data/out/counts"]
    jobs.apply("wordcount", {"file": "obs://data/jobs/wordcount.py", "args": args})

    status = jobs.wait_phase("wordcount", "Succeeded", "Failed", timeout=SPARK_TIMEOUT)

    assert status["phase"] == "Succeeded", status.get("log")
    assert status["appId"].startswith("local-")
    out = obs / "data" / "out" / "counts"
    assert (out / "_SUCCESS").exists()
    lines = [line for part in sorted(out.glob("part-*")) for line in part.read_text().split("\n")]
    counts = dict(line.split(" ") for line in lines if line)
    assert counts == {"to": "2", "be": "3", "or": "1", "not": "1", "quick": "1"}


def test_a_script_that_raises_ends_failed_with_its_traceback_in_status_log(jobs, operator):
    jobs.apply("fails", {"file": "obs://data/jobs/fails.py", "name": "nightly"})

    status = jobs.wait_phase("fails", "Failed", "Succeeded", timeout=SPARK_TIMEOUT)

    assert status["phase"] == "Failed"
    assert status["state"] == "dead"
    log = "\n".join(status["log"])
    assert "Traceback (most recent call last):" in log
    assert "RuntimeError: no input for nightly-" in log  # Spark's app name is DLI's job name
    assert "RuntimeError: no input for nightly-" in status["message"]


def test_deleting_a_running_job_stops_its_whole_spark_process_tree(jobs, emulator, operator):
    jobs.apply("sleeps", {"file": "obs://data/jobs/sleeps.py", "args": ["600"]})
    status = jobs.wait_phase("sleeps", "Running", "Failed", timeout=SPARK_TIMEOUT)
    assert status["phase"] == "Running", status.get("log")
    pids = _wait(lambda: len(batch_pids(status["batchId"])) >= 2, "the JVM and its Python driver")
    assert pids

    jobs.delete("sleeps")

    _wait(lambda: not batch_pids(status["batchId"]), "no process of the job left", timeout=30)
    [held] = emulator.created("sleeps")
    assert held["state"] == "dead"
    assert held["stopReason"] == "cancelled by the user"


def test_two_jobs_on_a_one_slot_queue_run_one_after_the_other(jobs, emulator, operator):
    spec = {"queue": "q1", "file": "obs://data/jobs/sleeps.py", "args": ["2"]}
    jobs.apply_many({"first": spec, "second": spec})

    for name in ("first", "second"):
        status = jobs.wait_phase(name, "Succeeded", "Failed", timeout=SPARK_TIMEOUT)
        assert status["phase"] == "Succeeded", status.get("log")

    runs = sorted(_span(emulator.created(name)[0]) for name in ("first", "second"))
    (_, first_end), (second_start, _) = runs
    assert first_end <= second_start, f"the runs overlap: {runs}"


def _span(batch: dict) -> tuple[int, int]:
    """When a batch started running and when it ended (epoch ms), from the emulator's history."""
    at = {entry["state"]: entry["at"] for entry in batch["history"]}
    return at["running"], at["success"]


def _wait(check, what: str, timeout: float = SPARK_TIMEOUT):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if result := check():
            return result
        time.sleep(0.5)
    raise AssertionError(f"timed out waiting for {what}")
