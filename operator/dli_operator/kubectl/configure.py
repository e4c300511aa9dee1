"""``kubectl dli configure``: save the user's DLI settings for the current kubeconfig context.

What it saves is what the user would otherwise export (access.py), in the file of ``config.py``.
Keys are taken from the environment (``--credentials-from-env``), never from the command line,
where other users of the machine could read them in the process list; they are never printed.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from dli_operator.dli.auth import Credentials
from dli_operator.dli.client import checked_endpoint
from dli_operator.kubectl import config
from dli_operator.kubectl.access import (
    ENV_ACCESS_KEY,
    ENV_SECRET_KEY,
    ENV_SECURITY_TOKEN,
    PluginError,
    current_context,
    kube_login,
)


@dataclass(frozen=True)
class Request:
    endpoint: str | None = None
    region: str | None = None
    project_id: str | None = None
    allow_insecure: bool = False
    credentials_from_env: bool = False
    show: bool = False
    forget: bool = False


def configure(request: Request, env: Mapping[str, str]) -> str:
    """Save, show or forget the current context's settings; return what to tell the user."""
    context = current_context(env)
    if context is None:
        raise PluginError("the kubeconfig has no current context to save settings for")
    server = kube_login().server or ""
    path = config.config_path(env)
    try:
        if request.forget:
            gone = config.forget(path, context)
            return f"{'forgot' if gone else 'nothing saved for'} context {context} in {path}"
        if request.show:
            saved = config.load(path, context, server)
            if saved is None:
                return f"nothing saved for context {context} (server {server}) in {path}"
            return f"context {context} in {path}:\n{saved.describe()}"
        settings = _settings(request, env, server)
        config.save(path, context, settings)
    except (OSError, config.ConfigError) as exc:
        raise PluginError(str(exc)) from exc
    return f"saved for context {context} in {path}:\n{settings.describe()}"


def _settings(request: Request, env: Mapping[str, str], server: str) -> config.ContextSettings:
    if request.endpoint:
        try:
            checked_endpoint(request.endpoint, allow_insecure=request.allow_insecure)
        except ValueError as exc:
            raise PluginError(f"{exc}: add --allow-insecure-endpoint to save it") from exc
    credentials = None
    if request.credentials_from_env:
        access_key, secret_key = env.get(ENV_ACCESS_KEY), env.get(ENV_SECRET_KEY)
        if not (access_key and secret_key):
            raise PluginError(
                f"--credentials-from-env: set {ENV_ACCESS_KEY} and {ENV_SECRET_KEY} "
                f"(and {ENV_SECURITY_TOKEN} for temporary credentials)"
            )
        credentials = Credentials(access_key, secret_key, env.get(ENV_SECURITY_TOKEN) or None)
    return config.ContextSettings(
        server=server,
        endpoint=request.endpoint.rstrip("/") if request.endpoint else None,
        region=request.region,
        project_id=request.project_id,
        allow_insecure_endpoint=request.allow_insecure,
        credentials=credentials,
    )
