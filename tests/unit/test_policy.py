"""The tenancy policy as a table: each target, and the rule that refuses it (issue 11)."""

from __future__ import annotations

from typing import Any

import pytest

from dli_operator import policy
from dli_operator.settings import PolicySettings

HOME = "https://dli.cn-north-4.myhuaweicloud.com"
EXTRA = "https://dli.cn-east-3.myhuaweicloud.com"
P1, P2 = "a" * 32, "b" * 32
TRUSTED = policy.Trusted(HOME, P1, frozenset({HOME, EXTRA}))


def check(
    rules: dict[str, Any],
    *,
    default: bool = True,
    endpoint: str = HOME,
    project: str = P1,
    namespace: str = "team",
    labels: dict[str, str] | None = None,
) -> str | None:
    refused = policy.refusal(
        PolicySettings(**rules),
        TRUSTED,
        namespace=namespace,
        labels=labels,
        endpoint=endpoint,
        project=project,
        default_credentials=default,
    )
    return refused.rule if refused else None


@pytest.mark.parametrize(
    ("rules", "target", "rule"),
    [
        ({"default_credentials_namespaces": ["team"]}, {}, None),
        ({"default_credentials_namespaces": ["*"]}, {}, None),
        ({}, {}, policy.DEFAULT_NAMESPACES),
        ({"default_credentials_namespaces": ["other"]}, {}, policy.DEFAULT_NAMESPACES),
        ({"default_credentials_namespace_selector": "x=y"}, {"labels": {"x": "y"}}, None),
        (
            {"default_credentials_namespace_selector": "x=y"},
            {"labels": {"x": "z"}},
            policy.DEFAULT_SELECTOR,
        ),
        (
            {"default_credentials_namespaces": ["*"]},
            {"endpoint": "https://evil.example"},
            policy.TRUSTED_ENDPOINTS,
        ),
        ({"default_credentials_namespaces": ["*"]}, {"endpoint": EXTRA}, policy.DEFAULT_ENDPOINT),
        ({"default_credentials_namespaces": ["*"]}, {"project": P2}, policy.DEFAULT_PROJECT),
        ({}, {"default": False, "endpoint": EXTRA, "project": P2}, None),
        ({}, {"default": False, "endpoint": "https://evil.example"}, policy.TRUSTED_ENDPOINTS),
        ({"namespace_projects": {"team": [P2]}}, {"default": False}, policy.NAMESPACE_PROJECTS),
        ({"namespace_projects": {"team": [P2]}}, {"default": False, "project": P2}, None),
        ({"namespace_projects": {"*": [P2]}}, {"default": False}, policy.NAMESPACE_PROJECTS),
        ({"namespace_projects": {"*": [P2], "team": [P1]}}, {"default": False}, None),
    ],
)
def test_each_target_meets_the_rule_that_governs_it(
    rules: dict[str, Any], target: dict[str, Any], rule: str | None
) -> None:
    assert check(rules, **target) == rule


@pytest.mark.parametrize(
    ("selector", "labels", "selected"),
    [
        ("a=b", {"a": "b"}, True),
        ("a==b", {"a": "b"}, True),
        ("a=b", {"a": "c"}, False),
        ("a!=b", {"a": "c"}, True),
        ("a!=b", {}, True),
        ("a", {"a": ""}, True),
        ("a", {}, False),
        ("!a", {}, True),
        ("!a", {"a": "x"}, False),
        ("a=b, c", {"a": "b", "c": "1"}, True),
        ("a=b,c", {"a": "b"}, False),
    ],
)
def test_label_selectors_match_as_kubernetes_equality_selectors_do(
    selector: str, labels: dict[str, str], selected: bool
) -> None:
    assert policy.selects(selector, labels) is selected


def test_a_namespace_admitted_by_name_needs_no_label_lookup() -> None:
    rules = PolicySettings(
        default_credentials_namespaces=["team"], default_credentials_namespace_selector="x=y"
    )
    assert not policy.needs_labels(rules, "team")
    assert policy.needs_labels(rules, "other")
