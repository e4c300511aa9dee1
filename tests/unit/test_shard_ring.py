"""The shard ring: the same owner in every process, even shares, and few keys moved per change."""

from __future__ import annotations

import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from dli_operator.shards.ring import Ring

KEYS = [f"team-{i % 7}/job-{i}" for i in range(30_000)]
PODS = ["dli-operator-0", "dli-operator-1", "dli-operator-2"]
OPERATOR = Path(__file__).resolve().parents[2] / "operator"


def owners(ring: Ring) -> dict[str, str | None]:
    return {key: ring.owner(key) for key in KEYS}


def test_an_empty_ring_owns_nothing() -> None:
    ring = Ring([])
    assert ring.members == ()
    assert ring.owner("team/job") is None


def test_one_member_owns_every_key() -> None:
    assert set(owners(Ring(["only"])).values()) == {"only"}


def test_members_are_sorted_and_deduplicated() -> None:
    assert Ring(["b", "a", "b"]).members == ("a", "b")
    assert Ring(["b", "a"]) == Ring(["a", "b"])


def test_the_owner_is_the_same_in_another_process() -> None:
    """Python salts ``hash()`` per process; the ring must not depend on it."""
    sample = KEYS[:200]
    here = [Ring(PODS).owner(key) for key in sample]
    script = (
        "import sys, json\n"
        "from dli_operator.shards.ring import Ring\n"
        f"print(json.dumps([Ring({PODS!r}).owner(k) for k in {sample!r}]))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        check=True,
        env={"PYTHONPATH": str(OPERATOR), "PYTHONHASHSEED": "12345"},
    )
    assert out.stdout.strip() == str(here).replace("'", '"')


@pytest.mark.parametrize(
    "members", [PODS, ["replica-a", "replica-b", "replica-c"]], ids=["statefulset", "named"]
)
def test_three_members_each_get_about_a_third(members: list[str]) -> None:
    shares = Counter(owners(Ring(members)).values())
    assert set(shares) == set(members)
    for member in members:
        assert abs(shares[member] - 10_000) < 1_500, shares


def test_a_fourth_member_takes_about_a_quarter_and_only_for_itself() -> None:
    before = owners(Ring(PODS))
    after = owners(Ring([*PODS, "dli-operator-3"]))
    moved = [key for key in KEYS if before[key] != after[key]]
    assert {after[key] for key in moved} == {"dli-operator-3"}
    assert 0.15 < len(moved) / len(KEYS) < 0.35


@pytest.mark.parametrize("gone", PODS)
def test_removing_a_member_moves_only_its_own_keys(gone: str) -> None:
    before = owners(Ring(PODS))
    after = owners(Ring([m for m in PODS if m != gone]))
    moved = {key for key in KEYS if before[key] != after[key]}
    assert moved == {key for key in KEYS if before[key] == gone}
    assert gone not in after.values()


def test_fewer_points_still_cover_the_whole_ring() -> None:
    ring = Ring(PODS, vnodes=1)
    assert {ring.owner(key) for key in KEYS} <= set(PODS)
    with pytest.raises(ValueError, match="vnodes"):
        Ring(PODS, vnodes=0)
