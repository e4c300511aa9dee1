"""Where ``kubectl dli`` takes the user's own DLI settings from: flags, then the environment,
then what ``kubectl dli configure`` saved for the kubeconfig context (issue 19, item 2)."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from dli_operator.dli.auth import Credentials
from dli_operator.kubectl import access, config
from dli_operator.kubectl.access import Flags, UserSettings, resolve
from dli_operator.kubectl.commands import main

SERVER = "https://127.0.0.1:6443"
SAVED = config.ContextSettings(
    server=SERVER,
    endpoint="http://127.0.0.1:8099",
    region="cn-north-4",
    project_id="saved-project",
    allow_insecure_endpoint=True,
    credentials=Credentials("SAVEDAK", "SAVED-SECRET-KEY"),
)
ENV = {
    access.ENV_ENDPOINT: "https://dli.env.example",
    access.ENV_REGION: "ap-southeast-1",
    access.ENV_PROJECT_ID: "env-project",
    access.ENV_ALLOW_INSECURE: "false",
    access.ENV_ACCESS_KEY: "ENVAK",
    access.ENV_SECRET_KEY: "ENV-SECRET-KEY",
}
FLAGS = Flags("https://dli.flag.example", "eu-west-101", "flag-project", True)


def test_saved_settings_apply_when_neither_flags_nor_environment_say_else() -> None:
    assert resolve(Flags(), {}, SAVED) == UserSettings(
        "http://127.0.0.1:8099",
        "cn-north-4",
        "saved-project",
        True,
        Credentials("SAVEDAK", "SAVED-SECRET-KEY"),
    )


def test_the_environment_wins_over_saved_settings() -> None:
    user = resolve(Flags(), ENV, SAVED)
    assert (user.endpoint, user.region, user.project_id) == (
        "https://dli.env.example",
        "ap-southeast-1",
        "env-project",
    )
    assert user.allow_insecure is False  # set to false in the environment: saved true loses
    assert user.credentials == Credentials("ENVAK", "ENV-SECRET-KEY")


def test_flags_win_over_the_environment_and_saved_settings() -> None:
    user = resolve(FLAGS, ENV, SAVED)
    assert (user.endpoint, user.region, user.project_id, user.allow_insecure) == (
        "https://dli.flag.example",
        "eu-west-101",
        "flag-project",
        True,
    )
    assert resolve(Flags(allow_insecure=False), {}, SAVED).allow_insecure is False


def test_half_a_key_pair_in_the_environment_does_not_hide_the_saved_pair() -> None:
    half = {access.ENV_ACCESS_KEY: "ENVAK"}
    assert resolve(Flags(), half, SAVED).credentials == SAVED.credentials
    assert resolve(Flags(), half, None).credentials is None


def test_nothing_anywhere_resolves_to_nothing() -> None:
    assert resolve(Flags(), {}, None) == UserSettings()


@pytest.mark.parametrize(
    ("endpoint", "trusted"),
    [
        ("http://127.0.0.1:8099", True),  # the user's own endpoint
        ("http://127.0.0.1:8099/", True),
        ("https://dli.cn-north-4.myhuaweicloud.com", True),  # a region's official endpoint
        ("https://dli.eu-west-101.myhuaweicloud.eu", True),
        ("https://dli.cn-north-4.myhuaweicloud.eu", False),  # not what that region's is
        ("http://dli.cn-north-4.myhuaweicloud.com", False),
        ("https://dli.cn-north-4.myhuaweicloud.com:8443", False),
        ("https://dli.cn-north-4.myhuaweicloud.com.attacker.example", False),
        ("https://user@dli.cn-north-4.myhuaweicloud.com", False),
        ("https://dli.attacker.example", False),
        ("http://127.0.0.1:8100", False),
    ],
)
def test_your_keys_are_trusted_only_to_your_endpoint_or_an_official_one(
    endpoint: str, trusted: bool
) -> None:
    assert UserSettings(endpoint="http://127.0.0.1:8099").trusts(endpoint) is trusted


def kubeconfig(path: Path, server: str = SERVER, context: str = "dli-local") -> Path:
    path.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": "c", "cluster": {"server": server}}],
                "users": [{"name": "u", "user": {"token": "kube-token"}}],
                "contexts": [{"name": context, "context": {"cluster": "c", "user": "u"}}],
                "current-context": context,
            }
        )
    )
    return path


@pytest.fixture
def user_env(tmp_path: Path) -> dict[str, str]:
    """A user's environment: a kubeconfig, a config folder, and DLI keys to save."""
    return {
        "HOME": str(tmp_path / "home"),
        "XDG_CONFIG_HOME": str(tmp_path / "xdg"),
        "KUBECONFIG": str(kubeconfig(tmp_path / "kubeconfig")),
        access.ENV_ACCESS_KEY: "DEMOACCESSKEY",
        access.ENV_SECRET_KEY: "demo-secret-key-never-shown",
        access.ENV_SECURITY_TOKEN: "demo-token-never-shown",
    }


def configure(env: dict[str, str], *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, ["configure", *args], env=env)
    return result.exit_code, result.output


def test_configure_saves_for_the_context_in_a_0600_file_and_prints_no_secret(
    user_env: dict[str, str],
) -> None:
    code, output = configure(
        user_env,
        "--endpoint=http://127.0.0.1:8099/",
        "--allow-insecure-endpoint",
        "--project-id=p1",
        "--credentials-from-env",
    )
    assert code == 0, output
    path = Path(user_env["XDG_CONFIG_HOME"]) / "dli-operator" / "kubectl-dli.yaml"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert "context dli-local" in output
    assert "endpoint: http://127.0.0.1:8099" in output
    code, shown = configure(user_env, "--show")
    assert code == 0
    for secret in ("demo-secret-key-never-shown", "demo-token-never-shown", "DEMOACCESSKEY"):
        assert secret not in output + shown
    saved = config.load(path, "dli-local", SERVER)
    assert saved is not None
    assert saved.credentials == Credentials(
        "DEMOACCESSKEY", "demo-secret-key-never-shown", "demo-token-never-shown"
    )
    assert not list(path.parent.glob(".kubectl-dli.yaml.*"))  # no temporary file left


def test_the_session_uses_saved_settings_only_for_the_server_they_were_saved_for(
    user_env: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert configure(user_env, "--project-id=p1")[0] == 0
    for key, value in user_env.items():
        monkeypatch.setenv(key, value)
    session = access.Session.from_kubeconfig(user_env)
    assert session.saved is not None
    assert session.saved.project_id == "p1"
    moved = kubeconfig(tmp_path / "moved", server="https://10.0.0.1:6443")
    monkeypatch.setenv("KUBECONFIG", str(moved))
    elsewhere = access.Session.from_kubeconfig({**user_env, "KUBECONFIG": str(moved)})
    assert elsewhere.saved is None  # same context name, another cluster: not its settings


def test_other_contexts_entries_are_kept_and_forget_removes_only_its_own(
    user_env: dict[str, str], tmp_path: Path
) -> None:
    other = {**user_env, "KUBECONFIG": str(kubeconfig(tmp_path / "k2", context="prod"))}
    assert configure(user_env, "--project-id=p1")[0] == 0
    assert configure(other, "--project-id=p2")[0] == 0
    path = config.config_path(user_env)
    assert config.load(path, "dli-local", SERVER) is not None
    assert configure(user_env, "--forget")[0] == 0
    assert config.load(path, "dli-local", SERVER) is None
    prod = config.load(path, "prod", SERVER)
    assert prod is not None
    assert prod.project_id == "p2"


def test_a_file_others_may_read_is_refused(user_env: dict[str, str]) -> None:
    assert configure(user_env, "--credentials-from-env")[0] == 0
    path = config.config_path(user_env)
    os.chmod(path, 0o644)
    code, output = configure(user_env, "--show")
    assert code == 1
    assert "may be read by others (mode 0644)" in output
    assert "chmod 600" in output
    with pytest.raises(access.PluginError, match="read by others"):
        access.load_saved(user_env, SERVER)


def test_configure_refuses_plain_http_without_the_opt_in_and_keys_it_cannot_find(
    user_env: dict[str, str],
) -> None:
    code, output = configure(user_env, "--endpoint=http://127.0.0.1:8099")
    assert code == 1
    assert "--allow-insecure-endpoint" in output
    del user_env[access.ENV_SECRET_KEY]
    code, output = configure(user_env, "--credentials-from-env")
    assert code == 1
    assert access.ENV_SECRET_KEY in output
    assert not config.config_path(user_env).exists()


def test_the_config_folder_defaults_to_home_dot_config() -> None:
    assert config.config_path({"HOME": "/home/u"}) == Path(
        "/home/u/.config/dli-operator/kubectl-dli.yaml"
    )
    assert config.config_path({"HOME": "/home/u", "XDG_CONFIG_HOME": "/x"}) == Path(
        "/x/dli-operator/kubectl-dli.yaml"
    )
