"""A DLI create request (its stored ``req_body``) as a local ``spark-submit`` command line.

What each field means in local mode is written down in docs/emulator.md; in short: ``file``,
``className``, ``args``, ``jars``, ``pyFiles``, ``files``, ``conf``, ``name`` and ``driverMemory``
mean what they mean to spark-submit; ``executorCores`` x ``numExecutors`` is the number of local
worker threads (capped, this is a shared laptop); ``driverCores`` and ``executorMemory`` are
passed as Spark conf but local mode gives them no effect (one JVM, sized by ``driverMemory``).
DLI's own fields (``sc_type``, ``modules``, ``resources``...) have no local meaning: they are
named in the driver log as ignored. The defaults keep one job light on a 2-core machine.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dli_operator.emulator.obs import Locations

DEFAULT_DRIVER_MEMORY = "512m"
# Light by default, every key can be overridden by the job's conf: no web UI (no port per job),
# few shuffle partitions, and Spark's INFO chatter off so the driver log shows the application's
# own output (the PySpark shell does the same); conf "spark.log.level": "INFO" brings it back.
DEFAULT_CONF = {
    "spark.ui.enabled": "false",
    "spark.sql.shuffle.partitions": "2",
    "spark.log.level": "WARN",
}
# Needed by the emulator itself, so never overridden: the event log names the application id
# (local mode prints it nowhere else), and the driver listens on loopback only.
PINNED_CONF = ("spark.eventLog.enabled", "spark.eventLog.dir", "spark.driver.bindAddress")
# DLI fields with no meaning in local mode, and the value DLI stores when they are not given.
IGNORED: dict[str, Any] = {
    "sc_type": None,
    "modules": [],
    "resources": [],
    "groups": [],
    "obs_bucket": None,
    "autoRecovery": False,
    "maxRetryTimes": 20,
    "feature": "basic",
    "spark_version": None,
    "image": None,
    "catalog_name": None,
    "execution_agency_urn": None,
}


@dataclass(frozen=True)
class Submission:
    """The arguments after ``spark-submit``, and the request fields left without effect."""

    argv: list[str]
    ignored: list[str]


def build(
    req_body: Mapping[str, Any],
    locations: Locations,
    *,
    app_name: str,
    events_dir: Path,
    max_cores: int,
) -> Submission:
    """The command line; raises ``obs.MissingFile`` for a file, jar or package not there."""
    main = locations.existing(str(req_body["file"]))
    argv = ["--master", f"local[{_threads(req_body, max_cores)}]", "--name", app_name]
    argv += ["--driver-memory", str(req_body.get("driverMemory") or DEFAULT_DRIVER_MEMORY)]
    for flag, key in (("--jars", "jars"), ("--py-files", "pyFiles"), ("--files", "files")):
        paths = [str(locations.existing(str(ref))) for ref in req_body.get(key) or []]
        if paths:
            argv += [flag, ",".join(paths)]
    for key, value in _conf(req_body, events_dir).items():
        argv += ["--conf", f"{key}={value}"]
    if main.suffix != ".py" and req_body.get("className"):
        argv += ["--class", str(req_body["className"])]
    argv.append(str(main))
    argv += [locations.argument(str(arg)) for arg in req_body.get("args") or []]
    return Submission(argv, ignored(req_body))


def _threads(req_body: Mapping[str, Any], max_cores: int) -> int:
    """local[N]: DLI's total executor cores, at most ``max_cores``."""
    wanted = int(req_body.get("executorCores") or 1) * int(req_body.get("numExecutors") or 1)
    return max(1, min(wanted, max_cores))


def _conf(req_body: Mapping[str, Any], events_dir: Path) -> dict[str, str]:
    conf = dict(DEFAULT_CONF)
    if "driverCores" in req_body:
        conf["spark.driver.cores"] = str(req_body["driverCores"])
    if "executorMemory" in req_body:
        conf["spark.executor.memory"] = str(req_body["executorMemory"])
    user = {str(k): str(v) for k, v in (req_body.get("conf") or {}).items()}
    conf.update({k: v for k, v in user.items() if k not in PINNED_CONF})
    conf.update(
        {
            "spark.eventLog.enabled": "true",
            "spark.eventLog.dir": events_dir.resolve().as_uri(),
            "spark.driver.bindAddress": "127.0.0.1",
        }
    )
    return conf


def ignored(req_body: Mapping[str, Any]) -> list[str]:
    """The DLI fields the job set that local mode cannot honour."""
    return [
        key
        for key, default in IGNORED.items()
        if key in req_body and req_body[key] not in (default, None, "", [], {})
    ]
