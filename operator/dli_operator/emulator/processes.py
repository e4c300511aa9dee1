"""The local Spark installation and the ``spark-submit`` processes of the ``spark`` back end.

Spark comes from pyspark (the ``[spark]`` extra), Java from the system: ``preflight()`` checks
both when the emulator starts and says what is missing. Each batch runs in its own process group
(spark-submit execs the driver JVM, which starts the Python driver of a PySpark job), so cancel
stops the whole tree with one signal; the group also gets SIGTERM when the emulator dies.
"""

from __future__ import annotations

import contextlib
import ctypes
import importlib.util
import os
import re
import shutil
import signal
import subprocess
import sys
from pathlib import Path

JAVA_MIN = 17  # pyspark 4 needs Java 17 or later (Spark 4.0 release notes)
PR_SET_PDEATHSIG = 1  # <linux/prctl.h>
# Local mode prints its application id nowhere; the event log is named after it
# (Spark 4: "eventlog_v2_local-1796016855198", Spark 3: "local-1796016855198.inprogress").
APP_ID = re.compile(r"local-\d+")
BATCH_ENV = "DLI_EMULATOR_BATCH_ID"
"""Set in every process of a batch (inherited by the Python driver): finds the whole tree."""


class SparkUnavailable(Exception):
    """pyspark or Java is missing: the ``spark`` back end cannot start."""


def spark_home() -> Path:
    """The Spark distribution inside the installed pyspark package."""
    spec = importlib.util.find_spec("pyspark")
    if spec is None or not spec.submodule_search_locations:
        raise SparkUnavailable(
            "the spark back end needs pyspark: pip install 'dli-operator[spark]'"
        )
    return Path(next(iter(spec.submodule_search_locations)))


def preflight() -> Path:
    """``SPARK_HOME``, after checking that pyspark and a Java 17+ runtime are there."""
    home = spark_home()
    java = _java()
    version = _java_major(java)
    if version < JAVA_MIN:
        raise SparkUnavailable(
            f"the spark back end needs Java {JAVA_MIN} or later; {java} is Java {version}"
        )
    return home


def _java() -> str:
    java_home = os.environ.get("JAVA_HOME")
    java = str(Path(java_home) / "bin" / "java") if java_home else shutil.which("java")
    if not java or not Path(java).exists():
        raise SparkUnavailable(
            f"the spark back end needs a Java {JAVA_MIN}+ runtime: install one "
            "(e.g. apt-get install openjdk-17-jre-headless) or set JAVA_HOME"
        )
    return java


def _java_major(java: str) -> int:
    out = subprocess.run([java, "-version"], capture_output=True, text=True, timeout=60)
    found = re.search(r'version "(\d+)(?:\.(\d+))?', out.stderr + out.stdout)
    if not found:
        raise SparkUnavailable(f"cannot tell the version of {java}: {out.stderr.strip()}")
    major, minor = int(found[1]), int(found[2] or 0)
    return minor if major == 1 else major  # "1.8.0" is Java 8


def launch(
    spark: Path, argv: list[str], log: Path, batch_id: str, cwd: Path
) -> subprocess.Popen[bytes]:
    """Start ``spark-submit argv`` in a new process group, stdout and stderr into ``log``."""
    env = {
        **os.environ,
        "SPARK_HOME": str(spark),
        # The driver and its block manager listen on loopback only.
        "SPARK_LOCAL_IP": "127.0.0.1",
        "PYSPARK_PYTHON": sys.executable,
        "PYSPARK_DRIVER_PYTHON": sys.executable,
        BATCH_ENV: batch_id,
    }
    with log.open("ab") as out:
        return subprocess.Popen(
            [str(spark / "bin" / "spark-submit"), *argv],
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=cwd,
            env=env,
            start_new_session=True,
            preexec_fn=_die_with_parent,
        )


def _die_with_parent() -> None:
    # Runs in the child before exec: SIGTERM when the emulator dies, even by SIGKILL. The
    # emulator must not import the operator's helpers (import contract), hence its own copy.
    ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def signal_group(process: subprocess.Popen[bytes], sig: int) -> None:
    """Send ``sig`` to the batch's whole process group (spark-submit set it up as leader)."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, sig)


def group_alive(process: subprocess.Popen[bytes]) -> bool:
    """Whether any process of the group is left (the leader may be gone, a child not)."""
    process.poll()
    try:
        os.killpg(process.pid, 0)
    except ProcessLookupError:
        return False
    return True


def app_id(events_dir: Path) -> str:
    """The application id, once Spark has opened its event log; ``""`` before that."""
    if not events_dir.is_dir():
        return ""
    for entry in events_dir.iterdir():
        found = APP_ID.search(entry.name)
        if found:
            return found[0]
    return ""


def batch_pids(batch_id: str) -> list[int]:
    """Every process of a batch, found by the variable it inherited (Linux ``/proc``)."""
    marker = f"{BATCH_ENV}={batch_id}\0".encode()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            environ = (entry / "environ").read_bytes()
        except OSError:  # gone meanwhile, or not ours to read
            continue
        if marker in environ:
            found.append(int(entry.name))
    return found


def kill_batch(batch_id: str) -> None:
    """SIGKILL whatever is left of a batch (after an emulator restart: no pid to trust)."""
    for pid in batch_pids(batch_id):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
