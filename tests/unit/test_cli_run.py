"""`dli-operator run` hands kopf what the Deployment and the chart's StatefulSet give it."""

from __future__ import annotations

from typing import Any

import kopf
import pytest
from click.testing import CliRunner

from dli_operator.cli import main


@pytest.fixture
def kopf_run(monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    seen: dict[str, Any] = {}
    monkeypatch.setattr(kopf, "run", lambda **kwargs: seen.update(kwargs))
    return seen


def test_kopf_never_pauses_a_replica(kopf_run: dict[str, Any]) -> None:
    # Replicas coordinate by shard Leases; kopf's own active/standby mode stays off.
    out = CliRunner().invoke(main, ["run", "-A"])
    assert out.exit_code == 0, out.output
    assert kopf_run["standalone"] is True


def test_the_old_standalone_flag_is_still_accepted(kopf_run: dict[str, Any]) -> None:
    out = CliRunner().invoke(main, ["run", "-A", "--standalone"])
    assert out.exit_code == 0, out.output
    assert kopf_run["standalone"] is True


def test_the_served_namespaces_reach_the_engines_informer(kopf_run: dict[str, Any]) -> None:
    out = CliRunner().invoke(main, ["run", "-n", "a", "-n", "team-*"])
    assert out.exit_code == 0, out.output
    assert kopf_run["memo"].namespaces == ("a", "team-*")
    assert (kopf_run["clusterwide"], kopf_run["namespaces"]) == (False, ("a", "team-*"))
