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
        }

    @property
    def endpoint(self) -> str:
        """The base URL a client should use."""
        return f"http://{self.host}:{self.port}"
