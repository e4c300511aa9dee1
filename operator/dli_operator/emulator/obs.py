"""Where a DLI file reference lives on this machine, for the ``spark`` back end (issue 13).

DLI takes two kinds of reference for ``file``, ``jars``, ``pyFiles`` and ``files`` (dli_02_0124,
dli-api.md 2.1): an OBS path ``obs://bucket/key``, or the name of a package uploaded to DLI's
resource management (``group/name.jar``, no scheme). Locally an OBS path is the file
``obs_root/bucket/key`` and a package name is ``packages_dir/name``. A reference that leaves its
root (``..``) or uses another scheme is refused, as DLI refuses what it cannot download.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

OBS = "obs://"


class MissingFile(Exception):
    """A referenced file that is not there: the job ends ``dead`` with this in its log."""


@dataclass(frozen=True)
class Locations:
    """The two local roots that stand for OBS and DLI's package store."""

    obs_root: Path
    packages_dir: Path

    def local(self, reference: str) -> Path:
        """The local path of a reference, whether or not the file exists yet (outputs)."""
        if reference.startswith(OBS):
            return _inside(self.obs_root, reference[len(OBS) :], reference)
        if "://" in reference or reference.startswith("/"):
            raise MissingFile(
                f"{reference}: only obs://bucket/key paths and DLI package names are supported"
            )
        return _inside(self.packages_dir, reference, reference)

    def existing(self, reference: str) -> Path:
        """The local path of a file the job needs; ``MissingFile`` if it is not there."""
        path = self.local(reference)
        if not path.is_file():
            where = "OBS" if reference.startswith(OBS) else "the DLI package store"
            raise MissingFile(f"{reference} does not exist in {where} (looked for {path})")
        return path

    def argument(self, value: str) -> str:
        """An application argument: an OBS path becomes its local path, anything else stays."""
        if not value.startswith(OBS):
            return value
        local = str(self.local(value))
        return local + "/" if value.endswith("/") else local


def _inside(root: Path, relative: str, reference: str) -> Path:
    base = root.resolve()
    path = (base / relative).resolve()
    if not relative or not path.is_relative_to(base) or path == base:
        raise MissingFile(f"{reference}: not a path to a file")
    return path
