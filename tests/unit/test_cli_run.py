"""`dli-operator run` hands kopf what the Deployment and the chart's StatefulSet give it."""

from __future__ import annotations

from typing import Any

import kopf
import pytest
from click.testing import CliRunner

from dli_operator import handlers
from dli_operator.cli import main


@pytest.fixture
def kopf_run(monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    seen: dict[str, Any] = {}
    monkeypatch.setattr(kopf, "run", lambda **kwargs: seen.update(kwargs))
    return seen


def test_the_peering_priority_comes_from_the_environment(kopf_run: dict[str, Any]) -> None:
    env = {"DLI_OPERATOR_PEERING__PRIORITY": "2"}
    out = CliRunner().invoke(main, ["run", "-A", "--peering=dli-operator"], env=env)
    assert out.exit_code == 0, out.output
    assert (kopf_run["priority"], kopf_run["peering_name"]) == (2, "dli-operator")


def test_the_served_namespaces_reach_the_peering_startup(kopf_run: dict[str, Any]) -> None:
    out = CliRunner().invoke(main, ["run", "-n", "a", "-n", "team-*", "--peering=p"])
    assert out.exit_code == 0, out.output
    settings = kopf.OperatorSettings()
    settings.peering.clusterwide = False
    # A pattern cannot be resolved ahead of time: only the named namespace gets its object.
    assert handlers._peering_namespaces(settings, kopf_run["memo"]) == ["a"]
    settings.peering.clusterwide = True
    assert handlers._peering_namespaces(settings, kopf_run["memo"]) == [None]
