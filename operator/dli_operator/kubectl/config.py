"""Settings ``kubectl dli`` saves per kubeconfig context (``kubectl dli configure``).

One file, ``$XDG_CONFIG_HOME/dli-operator/kubectl-dli.yaml`` (``~/.config/...`` by default),
written with mode 0600 in a 0700 folder. Each entry is keyed by the context's name and records
the API server it was saved for: an entry applies only while the current context still points at
that server, so a context renamed or re-pointed elsewhere never picks up another cluster's keys.

An entry holds what the user would otherwise export: the DLI endpoint (or region), whether a
plain-http endpoint is allowed, the project id, and optionally the user's own AK/SK (and security
token). They are the user's choices, as the variables are, so the rule of ``access.py`` holds:
the user's keys go only to the endpoint the user named (here, saved) or to a region's official
endpoint, never to one a job's author wrote into a spec or a status. ``make dev`` saves the
demo's (hack/dev.sh). The file is refused while others may read it (as ssh does with its keys).
"""

from __future__ import annotations

import os
import stat
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from dli_operator.dli.auth import Credentials

FILE_NAME = "kubectl-dli.yaml"
FILE_MODE = 0o600
DIR_MODE = 0o700


class ConfigError(Exception):
    """The saved settings cannot be used; the message says what to do."""


@dataclass(frozen=True)
class ContextSettings:
    """What one kubeconfig context's ``kubectl dli`` commands use unless flags or env say else."""

    server: str
    endpoint: str | None = None
    region: str | None = None
    project_id: str | None = None
    allow_insecure_endpoint: bool = False
    credentials: Credentials | None = field(default=None, repr=False)

    def to_yaml(self) -> dict[str, Any]:
        entry: dict[str, Any] = {"server": self.server}
        for key, value in (
            ("endpoint", self.endpoint),
            ("region", self.region),
            ("projectId", self.project_id),
        ):
            if value:
                entry[key] = value
        if self.allow_insecure_endpoint:
            entry["allowInsecureEndpoint"] = True
        if self.credentials is not None:
            keys = {"accessKey": self.credentials.access_key}
            keys["secretKey"] = self.credentials.secret_key
            if self.credentials.security_token:
                keys["securityToken"] = self.credentials.security_token
            entry["credentials"] = keys
        return entry

    @classmethod
    def from_yaml(cls, entry: Mapping[str, Any]) -> ContextSettings:
        keys = entry.get("credentials")
        credentials = None
        if isinstance(keys, Mapping) and keys.get("accessKey") and keys.get("secretKey"):
            token = keys.get("securityToken")
            credentials = Credentials(
                str(keys["accessKey"]), str(keys["secretKey"]), str(token) if token else None
            )
        return cls(
            server=str(entry.get("server") or ""),
            endpoint=_text(entry.get("endpoint")),
            region=_text(entry.get("region")),
            project_id=_text(entry.get("projectId")),
            allow_insecure_endpoint=entry.get("allowInsecureEndpoint") is True,
            credentials=credentials,
        )

    def describe(self) -> str:
        """The entry as text for the user, the secret key and token never shown."""
        lines = [f"server: {self.server}"]
        lines += [f"endpoint: {self.endpoint}"] if self.endpoint else []
        lines += [f"region: {self.region}"] if self.region else []
        lines += [f"projectId: {self.project_id}"] if self.project_id else []
        lines += ["allowInsecureEndpoint: true"] if self.allow_insecure_endpoint else []
        if self.credentials is not None:
            lines.append(f"credentials: access key {self.credentials.access_key[:4]}***")
        return "\n".join(lines)


def config_path(env: Mapping[str, str]) -> Path:
    """``$XDG_CONFIG_HOME/dli-operator/kubectl-dli.yaml``, else under ``$HOME/.config``."""
    base = env.get("XDG_CONFIG_HOME") or str(Path(env.get("HOME") or Path.home()) / ".config")
    return Path(base) / "dli-operator" / FILE_NAME


def load(path: Path, context: str, server: str) -> ContextSettings | None:
    """The settings saved for ``context`` on ``server``; None if there are none for it."""
    entry = _contexts(path).get(context)
    if not isinstance(entry, Mapping):
        return None
    settings = ContextSettings.from_yaml(entry)
    if settings.server != server:
        return None  # saved for another cluster that had this context's name
    return settings


def save(path: Path, context: str, settings: ContextSettings) -> None:
    """Store ``settings`` for ``context``, replacing its entry; the file stays 0600."""
    contexts = dict(_contexts(path)) if path.exists() else {}
    contexts[context] = settings.to_yaml()
    _write(path, contexts)


def forget(path: Path, context: str) -> bool:
    """Remove ``context``'s entry; True if there was one."""
    if not path.exists():
        return False
    contexts = dict(_contexts(path))
    if contexts.pop(context, None) is None:
        return False
    _write(path, contexts)
    return True


def _contexts(path: Path) -> Mapping[str, Any]:
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        return {}
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise ConfigError(
            f"{path} may be read by others (mode {stat.S_IMODE(mode):04o}): it can hold DLI "
            f"keys, so kubectl dli does not use it; run chmod 600 {path}"
        )
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise ConfigError(f"cannot read {path}: {exc}") from exc
    contexts = document.get("contexts") if isinstance(document, Mapping) else None
    return contexts if isinstance(contexts, Mapping) else {}


def _write(path: Path, contexts: Mapping[str, Any]) -> None:
    """Write through a 0600 temporary file in the same folder, then rename over the old one."""
    path.parent.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)
    text = yaml.safe_dump({"contexts": dict(contexts)}, sort_keys=True)
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{FILE_NAME}.")
    try:
        os.fchmod(fd, FILE_MODE)
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(text)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def _text(value: object) -> str | None:
    return str(value) if value else None
