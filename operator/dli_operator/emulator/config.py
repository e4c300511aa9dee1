"""The emulator's settings: one frozen value, built by the CLI or a test, given to ``create_app``.

Kept apart from the app so the ``dli-operator emulator`` command can describe itself without
importing Starlette, and so ``summary()`` is the one place that decides what is safe to print
(never the secret key).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

# A 32-hex project id, the shape IAM hands out (dli-api.md section 1).
DEFAULT_PROJECT_ID = "0123456789abcdef0123456789abcdef"
BACKENDS = ("scripted", "spark")


@dataclass(frozen=True)
class SparkConfig:
    """The ``spark`` back end (issue 13): where DLI's files live locally, and queue sizes."""

    obs_root: Path = Path(".local/obs")
    """``obs://bucket/key`` is the file ``obs_root/bucket/key``."""
    packages_dir: Path = Path(".local/packages")
    """A DLI package name (no scheme, e.g. ``group/app.jar``) is the file ``packages_dir/name``."""
    work_dir: Path = Path(".local/spark")
    """One directory per batch: its driver log and Spark event log."""
    slots: int = 1
    """Jobs running at once on a queue not named in ``queue_slots``; the others wait."""
    queue_slots: tuple[tuple[str, int], ...] = ()
    """Per-queue overrides of ``slots``."""
    max_cores: int = 1
    """Upper bound of local[N] threads per job, whatever executorCores x numExecutors asks."""

    def slots_of(self, queue: str) -> int:
        return dict(self.queue_slots).get(queue, self.slots)


@dataclass(frozen=True)
class EmulatorConfig:
    """Everything the emulator needs; the defaults work with no flags."""

    host: str = "127.0.0.1"
    port: int = 8099
    project_id: str = DEFAULT_PROJECT_ID
    access_key: str = "EMULATORAK"
    secret_key: str = "EMULATORSK"
    queues: tuple[str, ...] = ("default", "q1")
    tokens: frozenset[str] = field(default_factory=frozenset)
    start_seconds: float = 1.0
    """Default time a job spends ``starting`` (and ``recovering`` between attempts)."""
    run_seconds: float = 5.0
    """Default time a job spends ``running`` per attempt."""
    state_file: Path | None = None
    """JSON-lines journal that keeps the jobs across a restart; ``None``: in memory only."""
    owner: str = "emulator"
    """What DLI reports as ``owner``: the submitting IAM user."""
    control_token: str | None = field(default=None, repr=False)
    """If set, the ``/_emulator/`` control API answers only ``Authorization: Bearer <token>``."""

    spark: SparkConfig | None = None
    """Run every batch for real on a local Spark (the ``spark`` back end); ``None``: scripted."""

    @property
    def backend(self) -> str:
        return "spark" if self.spark else "scripted"

    def summary(self) -> dict[str, object]:
        """The effective settings, safe to print: the secret key and tokens are never shown."""
        return {
            "host": self.host,
            "port": self.port,
            "project_id": self.project_id,
            "access_key": self.access_key,
            "secret_key": "***",
            "tokens": len(self.tokens),
            "control_token": "***" if self.control_token else None,
            "queues": ",".join(self.queues),
            "start_seconds": self.start_seconds,
            "run_seconds": self.run_seconds,
            "state_file": str(self.state_file) if self.state_file else None,
            "backend": self.backend,
            **(_spark_summary(self.spark) if self.spark else {}),
        }

    @property
    def endpoint(self) -> str:
        """The base URL a client should use."""
        return f"http://{self.host}:{self.port}"


def _spark_summary(spark: SparkConfig) -> dict[str, object]:
    slots = ",".join(f"{queue}={count}" for queue, count in spark.queue_slots)
    return {
        "obs_root": str(spark.obs_root),
        "packages_dir": str(spark.packages_dir),
        "spark_workdir": str(spark.work_dir),
        "queue_slots": f"{spark.slots}" + (f",{slots}" if slots else ""),
        "max_cores": spark.max_cores,
    }


def parse_slots(text: str) -> tuple[int, tuple[tuple[str, int], ...]]:
    """``--queue-slots``: ``2`` (every queue), ``default=2,q1=1``, or both (``1,etl=3``)."""
    slots, named = SparkConfig.slots, []
    for item in (part.strip() for part in text.split(",") if part.strip()):
        queue, _, count = item.rpartition("=")
        if not count.isdigit():
            raise ValueError(f"--queue-slots: {item!r} is not N or QUEUE=N")
        if queue:
            named.append((queue, int(count)))
        else:
            slots = int(count)
    return slots, tuple(named)
