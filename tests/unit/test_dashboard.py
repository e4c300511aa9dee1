"""The Grafana dashboard is a valid dashboard model, with nothing Grafana would not read.

Checked with Grafana's own typed models (grafana-foundation-sdk, generated from Grafana's
schemas): the JSON must load into ``Dashboard`` and encode back to itself, so a key the
model does not know (a typo, a made-up option) or a value of the wrong shape shows up as a
difference; every panel type must be a known panel plugin and every query a Prometheus query.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from grafana_foundation_sdk.cog import plugins
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.cog.runtime import UnknownDataquery, panelcfg_config
from grafana_foundation_sdk.models import dashboard, prometheus

DASHBOARD = Path(__file__).resolve().parents[2] / "deploy/components/monitoring/dashboard.json"


@pytest.fixture(scope="module")
def raw() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(DASHBOARD.read_text())
    return data


@pytest.fixture(scope="module")
def model(raw: dict[str, Any]) -> dashboard.Dashboard:
    plugins.register_default_plugins()
    return dashboard.Dashboard.from_json(raw)


def lost(original: Any, encoded: Any, path: str = "") -> list[str]:
    """Paths in ``original`` missing or different in ``encoded``."""
    if isinstance(original, dict):
        if not isinstance(encoded, dict):
            return [path]
        return [p for k, v in original.items() for p in lost(v, encoded.get(k), f"{path}.{k}")]
    if isinstance(original, list):
        if not isinstance(encoded, list) or len(encoded) != len(original):
            return [path]
        return [p for i, v in enumerate(original) for p in lost(v, encoded[i], f"{path}[{i}]")]
    return [] if original == encoded else [f"{path}: {original!r} != {encoded!r}"]


def test_the_dashboard_round_trips_through_grafanas_model(
    raw: dict[str, Any], model: dashboard.Dashboard
) -> None:
    encoded = json.loads(json.dumps(model, cls=JSONEncoder))
    assert lost(raw, encoded) == []


def test_the_round_trip_check_catches_an_unknown_key(raw: dict[str, Any]) -> None:
    bad = json.loads(json.dumps(raw))
    bad["panels"][1]["fieldConfig"]["defaults"]["unitt"] = "s"
    encoded = json.loads(json.dumps(dashboard.Dashboard.from_json(bad), cls=JSONEncoder))
    assert lost(bad, encoded) == [".panels[1].fieldConfig.defaults.unitt: 's' != None"]


def test_every_panel_is_a_known_plugin_with_prometheus_queries(
    model: dashboard.Dashboard,
) -> None:
    panels = [p for p in model.panels or [] if isinstance(p, dashboard.Panel)]
    assert len(panels) > 10
    for panel in panels:
        assert panelcfg_config(panel.type_val) is not None, panel.type_val
        assert panel.targets, panel.title
        for target in panel.targets:
            assert not isinstance(target, UnknownDataquery), panel.title
            assert isinstance(target, prometheus.Dataquery), panel.title


def test_panels_do_not_overlap(raw: dict[str, Any]) -> None:
    cells: set[tuple[int, int]] = set()
    for panel in raw["panels"]:
        pos = panel["gridPos"]
        mine = {
            (x, y)
            for x in range(pos["x"], pos["x"] + pos["w"])
            for y in range(pos["y"], pos["y"] + pos["h"])
        }
        assert not cells & mine, panel["title"]
        assert pos["x"] + pos["w"] <= 24
        cells |= mine
