"""A monotonic clock that moves only when a test says so, for the parts that take ``clock=``."""

from __future__ import annotations


class Clock:
    def __init__(self, start: float = 1000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now
