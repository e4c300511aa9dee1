"""The README's demo command, run the way a user runs it: twice, the second time with the
README's ``export KUBECONFIG=.local/kubeconfig`` in effect (issue 10, item 15)."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from dli_operator.controlplane import free_port

REPO = Path(__file__).resolve().parents[2]
DEV = REPO / "hack" / "dev.sh"


@pytest.fixture
def demo(tmp_path: Path) -> Iterator[dict[str, str]]:
    env = {
        **os.environ,
        "DLI_DEV_DIR": str(tmp_path / "local"),
        "XDG_CONFIG_HOME": str(tmp_path / "config"),  # kubectl dli's saved settings
        "DLI_DEV_BIN": str(Path(sys.executable).parent),
        "DLI_DEV_EMULATOR_PORT": str(free_port()),
        "DLI_DEV_HEALTH_PORT": str(free_port()),
        "DLI_DEV_METRICS_PORT": str(free_port()),
    }
    env.pop("KUBECONFIG", None)
    try:
        yield env
    finally:
        subprocess.run([str(DEV), "down"], env=env, cwd=REPO, capture_output=True, timeout=120)


def _up(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(DEV), "up"], env=env, cwd=REPO, capture_output=True, text=True, timeout=300
    )


def test_make_dev_twice_with_kubeconfig_exported_keeps_everything_up(
    demo: dict[str, str],
) -> None:
    first = _up(demo)
    assert first.returncode == 0, first.stdout + first.stderr
    kubeconfig = Path(demo["DLI_DEV_DIR"]) / "kubeconfig"
    before = kubeconfig.read_text()
    second = _up({**demo, "KUBECONFIG": str(kubeconfig)})
    assert second.returncode == 0, second.stdout + second.stderr
    assert kubeconfig.read_text() == before, "the demo's kubeconfig was rewritten"
    assert "operator already running" in second.stdout
    pid = int((Path(demo["DLI_DEV_DIR"]) / "operator.pid").read_text())
    os.kill(pid, 0)  # still alive
