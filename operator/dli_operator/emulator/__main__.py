"""``python -m dli_operator.emulator``: serve the emulator with uvicorn.

The ``dli-operator emulator`` command is the documented entry point; this module holds what both
share (building the uvicorn server, printing the settings) plus a flag-compatible argparse entry
for images that only have ``python -m``.
"""

from __future__ import annotations

import argparse
import logging
from collections.abc import Sequence
from pathlib import Path

import uvicorn

from dli_operator.emulator.app import create_app
from dli_operator.emulator.config import BACKENDS, EmulatorConfig, SparkConfig, parse_slots
from dli_operator.emulator.gateway import ConnectionDropped
from dli_operator.emulator.processes import SparkUnavailable, preflight

GRACEFUL_SHUTDOWN_SECONDS = 2


class _QuietDrops(logging.Filter):
    """A scripted dropped connection is not an application error; keep it out of the log."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not (record.exc_info and isinstance(record.exc_info[1], ConnectionDropped))


def build_server(config: EmulatorConfig, *, log_level: str = "warning") -> uvicorn.Server:
    """A uvicorn server for the app; call ``.run()`` (blocking) or ``.serve()`` (async)."""
    logging.getLogger("uvicorn.error").addFilter(_QuietDrops())
    app = create_app(config)
    uv_config = uvicorn.Config(
        app,
        host=config.host,
        port=config.port,
        log_level=log_level,
        access_log=False,
        # A scripted hang must not keep a stopping emulator alive.
        timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_SECONDS,
    )
    return uvicorn.Server(uv_config)


def describe(config: EmulatorConfig) -> str:
    """The effective settings as one line each; never the secret key."""
    lines = [f"DLI emulator listening on {config.endpoint}"]
    lines += [f"  {key}: {value}" for key, value in config.summary().items()]
    return "\n".join(lines)


def parse_args(argv: Sequence[str] | None = None) -> EmulatorConfig:
    """The same flags as ``dli-operator emulator``."""
    defaults = EmulatorConfig()
    parser = argparse.ArgumentParser(prog="python -m dli_operator.emulator")
    parser.add_argument("--host", default=defaults.host)
    parser.add_argument("--port", type=int, default=defaults.port)
    parser.add_argument("--project-id", default=defaults.project_id)
    parser.add_argument("--access-key", default=defaults.access_key)
    parser.add_argument("--secret-key", default=defaults.secret_key)
    parser.add_argument("--queues", default=",".join(defaults.queues))
    parser.add_argument("--token", action="append", default=[])
    parser.add_argument("--start-seconds", type=float, default=defaults.start_seconds)
    parser.add_argument("--run-seconds", type=float, default=defaults.run_seconds)
    parser.add_argument("--state-file", type=Path, default=None)
    spark = SparkConfig()
    parser.add_argument("--backend", choices=BACKENDS, default="scripted")
    parser.add_argument("--obs-root", type=Path, default=spark.obs_root)
    parser.add_argument("--packages-dir", type=Path, default=spark.packages_dir)
    parser.add_argument("--spark-workdir", type=Path, default=spark.work_dir)
    parser.add_argument("--queue-slots", default=str(spark.slots))
    parser.add_argument("--max-cores", type=int, default=spark.max_cores)
    parser.add_argument("--control-token", default=None)
    args = parser.parse_args(argv)
    if args.backend == "spark":
        slots, named = parse_slots(args.queue_slots)
        dirs = (args.obs_root, args.packages_dir, args.spark_workdir)
        spark = SparkConfig(*dirs, slots, named, args.max_cores)
    return EmulatorConfig(
        host=args.host,
        port=args.port,
        project_id=args.project_id,
        access_key=args.access_key,
        secret_key=args.secret_key,
        queues=tuple(q.strip() for q in args.queues.split(",") if q.strip()),
        tokens=frozenset(args.token),
        start_seconds=args.start_seconds,
        run_seconds=args.run_seconds,
        state_file=args.state_file,
        spark=spark if args.backend == "spark" else None,
        control_token=args.control_token,
    )


def main(argv: Sequence[str] | None = None) -> None:
    config = parse_args(argv)
    if config.spark:
        try:
            preflight()
        except SparkUnavailable as error:
            raise SystemExit(f"emulator: {error}") from None
    print(describe(config), flush=True)
    build_server(config, log_level="info").run()


if __name__ == "__main__":
    main()
