"""``--state-file``: an append-only JSON-lines journal, so a restarted emulator keeps its jobs.

Appending one line per create or cancel keeps 10,000 submissions linear; rewriting a snapshot on
every change would not be. Replaying the journal rebuilds the store exactly, timelines included,
so jobs carry on where wall-clock time has taken them while the emulator was down.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any, TextIO


class Journal:
    """Appends records to a file and reads them back."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self._file: TextIO | None = None

    def replay(self) -> Iterator[dict[str, Any]]:
        """Every record written so far; a torn last line (a crash mid-write) is skipped."""
        if not self.path.exists():
            return
        with self.path.open(encoding="utf-8") as lines:
            for line in lines:
                try:
                    yield json.loads(line)
                except ValueError:
                    continue

    def append(self, record: dict[str, Any]) -> None:
        if self._file is None:
            self._file = self.path.open("a", encoding="utf-8")
        self._file.write(json.dumps(record, separators=(",", ":")) + "\n")
        self._file.flush()

    def truncate(self) -> None:
        self.close()
        self.path.write_text("", encoding="utf-8")

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
