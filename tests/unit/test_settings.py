"""Settings from ``DLI_OPERATOR_*`` environment variables: parsing, validation, secrecy."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from pydantic import ValidationError

from dli_operator.settings import Settings, get_settings

SECRET = "s3cr3t-SK-do-not-print"


@pytest.fixture(autouse=True)
def clean_environ(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """No DLI_OPERATOR_* variable of the machine running the tests leaks in; no cached settings."""
    for name in list(os.environ):
        if name.upper().startswith("DLI_OPERATOR_"):
            monkeypatch.delenv(name)
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


def test_defaults_need_no_environment() -> None:
    settings = Settings()
    assert settings.dli.endpoint is None
    assert settings.dli.allow_insecure_endpoint is False
    assert settings.reconcile.poll_interval_seconds == 10.0
    assert settings.metrics.port == 9090


def test_nested_fields_are_read_with_the_prefix_and_double_underscores(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("DLI_OPERATOR_DLI__ENDPOINT", "https://dli.example.com")
    monkeypatch.setenv("DLI_OPERATOR_DLI__PROJECT_ID", "0123456789abcdef0123456789abcdef")
    monkeypatch.setenv("DLI_OPERATOR_DLI__REQUESTS_PER_SECOND", "2.5")
    monkeypatch.setenv("DLI_OPERATOR_RECONCILE__POLL_INTERVAL_SECONDS", "15")
    monkeypatch.setenv("DLI_OPERATOR_METRICS__PORT", "0")
    settings = Settings()
    assert settings.dli.endpoint == "https://dli.example.com"
    assert settings.dli.project_id == "0123456789abcdef0123456789abcdef"
    assert settings.dli.requests_per_second == 2.5
    assert settings.reconcile.poll_interval_seconds == 15.0
    assert settings.metrics.port == 0


def test_a_variable_without_the_prefix_is_ignored(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DLI__ENDPOINT", "https://elsewhere.example.com")
    monkeypatch.setenv("RECONCILE__POLL_INTERVAL_SECONDS", "99")
    settings = Settings()
    assert (settings.dli.endpoint, settings.reconcile.poll_interval_seconds) == (None, 10.0)


def test_settings_are_read_once_per_process(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DLI_OPERATOR_DLI__REGION", "cn-north-4")
    first = get_settings()
    monkeypatch.setenv("DLI_OPERATOR_DLI__REGION", "ap-southeast-1")
    assert get_settings() is first
    assert first.dli.region == "cn-north-4"


def test_a_plain_http_endpoint_is_refused_naming_the_opt_in(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("DLI_OPERATOR_DLI__ENDPOINT", "http://127.0.0.1:8099")
    with pytest.raises(ValidationError) as caught:
        Settings()
    text = str(caught.value)
    assert "DLI_OPERATOR_DLI__ENDPOINT is plain http" in text
    assert "DLI_OPERATOR_DLI__ALLOW_INSECURE_ENDPOINT=true" in text


def test_a_plain_http_endpoint_is_allowed_with_the_opt_in(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DLI_OPERATOR_DLI__ENDPOINT", "http://127.0.0.1:8099")
    monkeypatch.setenv("DLI_OPERATOR_DLI__ALLOW_INSECURE_ENDPOINT", "true")
    settings = Settings()
    assert (settings.dli.endpoint, settings.dli.allow_insecure_endpoint) == (
        "http://127.0.0.1:8099",
        True,
    )


@pytest.mark.parametrize(
    ("name", "value", "field"),
    [
        pytest.param(
            "DLI_OPERATOR_RECONCILE__POLL_INTERVAL_SECONDS",
            "0",
            "reconcile.poll_interval_seconds",
            id="a zero poll interval is refused",
        ),
        pytest.param(
            "DLI_OPERATOR_RECONCILE__LIST_PAGE_SIZE",
            "5000",
            "reconcile.list_page_size",
            id="a page size above DLI's maximum is refused",
        ),
        pytest.param(
            "DLI_OPERATOR_METRICS__PORT",
            "70000",
            "metrics.port",
            id="an impossible port is refused",
        ),
        pytest.param(
            "DLI_OPERATOR_DLI__BURST", "many", "dli.burst", id="a burst that is not a number"
        ),
    ],
)
def test_an_invalid_value_is_refused_naming_the_field(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str, field: str
) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(ValidationError) as caught:
        Settings()
    assert field in str(caught.value)


def test_secrets_never_appear_when_settings_are_printed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DLI_OPERATOR_DLI__ACCESS_KEY", "AK-visible-is-fine")
    monkeypatch.setenv("DLI_OPERATOR_DLI__SECRET_KEY", SECRET)
    monkeypatch.setenv("DLI_OPERATOR_DLI__SECURITY_TOKEN", SECRET + "-token")
    settings = Settings()
    assert settings.dli.secret_key is not None
    assert settings.dli.secret_key.get_secret_value() == SECRET
    shown = [repr(settings), str(settings), repr(settings.dli), settings.model_dump_json()]
    shown.append(str(settings.model_dump()))
    for text in shown:
        assert SECRET not in text


def test_policy_lists_are_comma_separated_and_project_maps_are_json(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("DLI_OPERATOR_POLICY__DEFAULT_CREDENTIALS_NAMESPACES", "team-a, team-b,")
    monkeypatch.setenv("DLI_OPERATOR_POLICY__ALLOWED_REGIONS", "cn-east-3")
    monkeypatch.setenv("DLI_OPERATOR_POLICY__NAMESPACE_PROJECTS", '{"team-a": ["p1", "p2"]}')
    policy = Settings().policy
    assert policy.default_credentials_namespaces == ["team-a", "team-b"]
    assert policy.allowed_regions == ["cn-east-3"]
    assert policy.namespace_projects == {"team-a": ["p1", "p2"]}


def test_by_default_no_namespace_may_use_the_default_credentials() -> None:
    policy = Settings().policy
    assert policy.default_credentials_namespaces == []
    assert policy.default_credentials_namespace_selector == ""


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({"DLI_OPERATOR_POLICY__ALLOWED_ENDPOINTS": "http://10.0.0.1"}, "ALLOWED_ENDPOINTS"),
        ({"DLI_OPERATOR_POLICY__ALLOWED_ENDPOINTS": "dli.example.com"}, "ALLOWED_ENDPOINTS"),
        ({"DLI_OPERATOR_IDENTITY__SOURCE": "oidc"}, "IDENTITY__IDP_ID"),
        ({"DLI_OPERATOR_IDENTITY__IAM_ENDPOINT": "http://iam"}, "IDENTITY__IAM_ENDPOINT"),
        ({"DLI_OPERATOR_IDENTITY__SOURCE": "vault"}, "identity.source"),
    ],
)
def test_an_unusable_policy_or_identity_is_refused_at_start(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str], named: str
) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(ValidationError, match=named):
        Settings()


def test_sharding_is_off_and_a_member_is_named_after_its_pod_by_default(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("HOSTNAME", "dli-operator-2")
    sharding = Settings().sharding
    assert sharding.enabled is False
    assert (sharding.ring, sharding.namespace) == ("dli-operator", "default")
    assert sharding.resolved_identity() == "dli-operator-2"
    monkeypatch.setenv("DLI_OPERATOR_SHARDING__IDENTITY", "replica-a")
    assert Settings().sharding.resolved_identity() == "replica-a"


def test_a_shard_lease_must_outlast_its_renew_interval(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DLI_OPERATOR_SHARDING__LEASE_SECONDS", "5")
    monkeypatch.setenv("DLI_OPERATOR_SHARDING__RENEW_SECONDS", "5")
    with pytest.raises(ValidationError, match="DLI_OPERATOR_SHARDING__RENEW_SECONDS"):
        Settings()
