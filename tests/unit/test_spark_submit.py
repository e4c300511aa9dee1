"""The spark back end's pure parts: where DLI references live locally, and the spark-submit line."""

from __future__ import annotations

from pathlib import Path

import pytest

from dli_operator.emulator.config import parse_slots
from dli_operator.emulator.obs import Locations, MissingFile
from dli_operator.emulator.submit import build


@pytest.fixture
def places(tmp_path: Path) -> Locations:
    locations = Locations(tmp_path / "obs", tmp_path / "packages")
    for path in ("obs/bucket/jobs/main.py", "obs/bucket/lib/dep.zip", "packages/grp/util.jar"):
        (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / path).write_text("")
    return locations


def flags(argv: list[str], flag: str) -> list[str]:
    return [argv[i + 1] for i, arg in enumerate(argv) if arg == flag]


def test_obs_paths_and_package_names_map_under_their_roots(places: Locations) -> None:
    assert places.existing("obs://bucket/jobs/main.py") == places.obs_root.resolve() / (
        "bucket/jobs/main.py"
    )
    assert places.existing("grp/util.jar") == places.packages_dir.resolve() / "grp/util.jar"
    with pytest.raises(MissingFile, match=r"obs://bucket/nope\.py does not exist in OBS"):
        places.existing("obs://bucket/nope.py")
    with pytest.raises(MissingFile, match="DLI package store"):
        places.existing("grp/nope.jar")


@pytest.mark.parametrize(
    "reference",
    ["obs://bucket/../../../etc/passwd", "file:///etc/passwd", "/etc/passwd", "obs://", "hdfs://x"],
)
def test_a_reference_outside_obs_and_the_package_store_is_refused(
    places: Locations, reference: str
) -> None:
    with pytest.raises(MissingFile):
        places.local(reference)


def test_each_request_field_becomes_its_spark_submit_flag(
    places: Locations, tmp_path: Path
) -> None:
    req_body = {
        "file": "obs://bucket/jobs/main.py",
        "className": "ignored.for.Python",
        "args": ["obs://bucket/in/", "obs://bucket/out", "--verbose"],
        "jars": ["grp/util.jar"],
        "pyFiles": ["obs://bucket/lib/dep.zip"],
        "files": ["obs://bucket/jobs/main.py"],
        "conf": {"spark.sql.shuffle.partitions": "4", "spark.log.level": "INFO"},
        "driverMemory": "1G",
        "driverCores": 2,
        "executorMemory": "4G",
        "executorCores": 2,
        "numExecutors": 3,
    }
    plan = build(req_body, places, app_name="wc", events_dir=tmp_path / "ev", max_cores=2)
    argv, obs = plan.argv, places.obs_root.resolve()
    assert flags(argv, "--master") == ["local[2]"]  # 2 x 3 executor cores, capped at 2
    assert flags(argv, "--name") == ["wc"]
    assert flags(argv, "--driver-memory") == ["1G"]
    assert flags(argv, "--jars") == [str(places.packages_dir.resolve() / "grp/util.jar")]
    assert flags(argv, "--py-files") == [str(obs / "bucket/lib/dep.zip")]
    assert flags(argv, "--files") == [str(obs / "bucket/jobs/main.py")]
    assert "--class" not in argv  # a Python main file has no class
    conf = dict(item.split("=", 1) for item in flags(argv, "--conf"))
    assert conf["spark.sql.shuffle.partitions"] == "4"
    assert conf["spark.log.level"] == "INFO"
    assert conf["spark.ui.enabled"] == "false"
    assert (conf["spark.driver.cores"], conf["spark.executor.memory"]) == ("2", "4G")
    main, inputs, outputs = (str(obs / "bucket" / key) for key in ("jobs/main.py", "in", "out"))
    assert argv[-4:] == [main, inputs + "/", outputs, "--verbose"]  # obs:// arguments made local
    assert plan.ignored == []


def test_a_jar_job_gets_its_class_and_the_light_defaults(places: Locations, tmp_path: Path) -> None:
    plan = build(
        {"file": "grp/util.jar", "className": "org.example.Main"},
        places,
        app_name="jar",
        events_dir=tmp_path,
        max_cores=4,
    )
    assert flags(plan.argv, "--class") == ["org.example.Main"]
    assert flags(plan.argv, "--master") == ["local[1]"]
    assert flags(plan.argv, "--driver-memory") == ["512m"]
    assert plan.argv[-1].endswith("grp/util.jar")


def test_the_job_conf_cannot_move_the_event_log_or_the_bind_address(
    places: Locations, tmp_path: Path
) -> None:
    wanted = {"spark.eventLog.dir": "file:///elsewhere", "spark.driver.bindAddress": "0.0.0.0"}
    plan = build(
        {"file": "obs://bucket/jobs/main.py", "conf": wanted},
        places,
        app_name="x",
        events_dir=tmp_path / "events",
        max_cores=1,
    )
    conf = dict(item.split("=", 1) for item in flags(plan.argv, "--conf"))
    assert conf["spark.eventLog.dir"] == (tmp_path / "events").as_uri()
    assert conf["spark.driver.bindAddress"] == "127.0.0.1"


def test_dli_fields_without_a_local_meaning_are_named_as_ignored(
    places: Locations, tmp_path: Path
) -> None:
    req_body = {
        "file": "obs://bucket/jobs/main.py",
        "sc_type": "B",
        "modules": ["sys.datasource.rds"],
        "feature": "basic",  # DLI's default: not worth a warning
        "maxRetryTimes": 20,
        "autoRecovery": False,
        "catalog_name": "dli",
    }
    plan = build(req_body, places, app_name="x", events_dir=tmp_path, max_cores=1)
    assert plan.ignored == ["sc_type", "modules", "catalog_name"]


def test_a_missing_dependency_fails_the_build(places: Locations, tmp_path: Path) -> None:
    req_body = {"file": "obs://bucket/jobs/main.py", "pyFiles": ["obs://bucket/lib/gone.zip"]}
    with pytest.raises(MissingFile, match=r"gone\.zip"):
        build(req_body, places, app_name="x", events_dir=tmp_path, max_cores=1)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2", (2, ())),
        ("default=3,q1=0", (1, (("default", 3), ("q1", 0)))),
        ("0,etl=2", (0, (("etl", 2),))),
    ],
)
def test_queue_slots_are_a_default_and_per_queue_counts(
    text: str, expected: tuple[int, tuple[tuple[str, int], ...]]
) -> None:
    assert parse_slots(text) == expected


def test_a_malformed_queue_slots_value_names_the_item() -> None:
    with pytest.raises(ValueError, match="'q1=two'"):
        parse_slots("q1=two")
