"""The runtime carries only what the operator imports, pinned with hashes, under one version.

The image is built from requirements/*.lock (Dockerfile); these tests keep the lock files true to
pyproject.toml and prove that the operator imports nothing outside its runtime dependencies.
"""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement

from dli_operator import __version__

ROOT = Path(__file__).resolve().parents[2]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
LOCKS = ROOT / "requirements"
# Installed for the tests and the emulator, never imported by the running operator.
NOT_AT_RUN_TIME = ("kubernetes", "starlette", "uvicorn", "cryptography", "huaweicloudsdkcore")
BLOCKER = """
import importlib.abc, sys
class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in {blocked!r}:
            raise ModuleNotFoundError(f"{{name}} is not a runtime dependency", name=name)
sys.meta_path.insert(0, Block())
import dli_operator.handlers, dli_operator.cli
from dli_operator.cli import main
main(["run", "--help"], standalone_mode=False)
"""


def pins(lock: str) -> dict[str, str]:
    """``{name: version}`` of one lock file; every pin must carry at least one hash."""
    text = (LOCKS / f"{lock}.lock").read_text()
    found = {}
    for block in re.split(r"\n(?=\S)", text):
        if match := re.match(r"([A-Za-z0-9._-]+)==(\S+)", block):
            assert "--hash=sha256:" in block, f"{lock}.lock: {match.group(1)} has no hash"
            found[canonical(match.group(1))] = match.group(2)
    return found


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def test_the_operator_starts_without_the_test_and_emulator_packages() -> None:
    code = BLOCKER.format(blocked=set(NOT_AT_RUN_TIME))
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert out.returncode == 0, out.stderr
    assert "--all-namespaces" in out.stdout


def test_the_blocker_does_block() -> None:
    """Without this, the test above could pass with a blocker that blocks nothing."""
    code = BLOCKER.format(blocked={"uvicorn"}) + "import dli_operator.emulator.__main__\n"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert "uvicorn is not a runtime dependency" in out.stderr


def test_runtime_dependencies_leave_out_the_client_library_and_the_emulator_server() -> None:
    runtime = {canonical(Requirement(r).name) for r in PYPROJECT["project"]["dependencies"]}
    extras = PYPROJECT["project"]["optional-dependencies"]
    assert not runtime & set(NOT_AT_RUN_TIME)
    # The emulator's server, and the signature checks of its IAM's ID tokens.
    emulator = {canonical(Requirement(r).name) for r in extras["emulator"]}
    assert emulator == {"starlette", "uvicorn", "cryptography"}
    assert "kubernetes" in {canonical(Requirement(r).name) for r in extras["test"]}


@pytest.mark.parametrize(("lock", "extra"), [("operator", None), ("emulator", "emulator")])
def test_each_lock_pins_its_dependencies_within_their_bounds(lock: str, extra: str | None) -> None:
    pinned = pins(lock)
    wanted = list(PYPROJECT["project"]["dependencies"])
    if extra:
        wanted += PYPROJECT["project"]["optional-dependencies"][extra]
    for line in wanted:
        requirement = Requirement(line)
        name = canonical(requirement.name)
        assert name in pinned, f"{name} missing from {lock}.lock: run `make lock`"
        assert requirement.specifier.contains(pinned[name]), f"{name}=={pinned[name]}: make lock"


def test_the_operator_lock_is_the_emulator_lock_minus_the_server() -> None:
    operator, emulator = pins("operator"), pins("emulator")
    assert operator.items() <= emulator.items()
    assert not {"kubernetes", "starlette", "uvicorn"} & set(operator)


def test_the_wheel_is_built_by_the_locked_backend_the_pyproject_names() -> None:
    build_in = [
        line
        for line in (LOCKS / "build.in").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert build_in == PYPROJECT["build-system"]["requires"]
    assert Requirement(build_in[0]).specifier.contains(pins("build")["hatchling"])


def test_one_version_source_and_the_command_reports_it() -> None:
    assert "version" in PYPROJECT["project"]["dynamic"]
    assert PYPROJECT["tool"]["hatch"]["version"]["path"] == "operator/dli_operator/__init__.py"
    cli = Path(sys.executable).with_name("dli-operator")
    out = subprocess.run([str(cli), "--version"], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == f"dli-operator, version {__version__}"
