"""Processes for the scale benchmark: start and stop them, read their cost from /proc."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "operator"))

from dli_operator import controlplane  # noqa: E402

FINAL = {"Succeeded", "Failed", "Cancelled"}
CLK_TCK = os.sysconf("SC_CLK_TCK")


def spawn(args: list[str], log: Path, env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:
        return subprocess.Popen(
            args,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,  # Ctrl-C reaches only us; we stop the children in order
            preexec_fn=controlplane.die_with_parent,
        )


def stop(proc: subprocess.Popen[bytes] | None, grace: float = 40.0) -> None:
    if proc is None or proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def get_json(url: str, timeout: float = 120.0) -> Any:
    with urllib.request.urlopen(url, timeout=timeout) as response:
        return json.loads(response.read())


def get_text(url: str, timeout: float = 30.0, attempts: int = 10) -> str:
    """GET ``url``, retried: a replica the resharding just restarted may reset the first tries."""
    for attempt in range(attempts):
        try:
            with urllib.request.urlopen(url, timeout=timeout) as response:
                return str(response.read().decode())
        except OSError:
            if attempt == attempts - 1:
                raise
            time.sleep(1.0)
    raise AssertionError("unreachable")


@dataclass
class Usage:
    """Peak RSS and CPU seconds of a process, from /proc."""

    peak_rss_mb: float
    rss_mb: float
    cpu_seconds: float


def usage(pid: int) -> Usage | None:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)

    def kb(key: str) -> float:
        return int(fields[key].split()[0]) / 1024

    # Fields after the ")" of the command name; utime and stime are fields 14 and 15.
    rest = stat.rsplit(")", 1)[1].split()
    cpu = (int(rest[11]) + int(rest[12])) / CLK_TCK
    return Usage(round(kb("VmHWM"), 1), round(kb("VmRSS"), 1), round(cpu, 1))


class LoadSampler(threading.Thread):
    """The 1-minute load average and process usage, every few seconds."""

    def __init__(self) -> None:
        super().__init__(daemon=True, name="load")
        self.samples: list[float] = []
        self.halt = threading.Event()

    def run(self) -> None:
        while not self.halt.wait(5.0):
            self.samples.append(os.getloadavg()[0])


@contextlib.contextmanager
def interruptible() -> Iterator[None]:
    """SIGTERM behaves like Ctrl-C, so the cleanup below always runs."""

    def raise_interrupt(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, raise_interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)
