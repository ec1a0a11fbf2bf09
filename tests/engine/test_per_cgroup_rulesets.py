"""Per-cgroup rulesets: ruleset-level ``cgroup`` and ``xattr_filter`` (upstream HEAD
engine/Ruleset.cpp, docs/ruleset_cgroup.md; ConfigCompilerTest RulesetWildcardCGroup,
RulesetCGroup, RulesetCGroupXattrfilter, RulesetCGroupTwoChainsIndependentlyPaused,
RulesetCGroupCount)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.support.harness import Harness, plugin

MB = 1 << 20


def config(**ruleset_keys: Any) -> dict[str, Any]:
    """One ruleset per workload: fires on the workload's own pressure
    (``ruleset_cgroup: "/"``) and kills the biggest of its children (``"*"``), dry."""
    return {
        "rulesets": [
            {
                "name": "per workload",
                "cgroup": "workload.slice/*",
                "detectors": [
                    [
                        "pressure",
                        plugin(
                            "pressure_above",
                            ruleset_cgroup="/",
                            resource="memory",
                            threshold=10,
                            duration=0,
                        ),
                    ]
                ],
                "actions": [plugin("kill_by_memory_size_or_growth", ruleset_cgroup="*", dry=True)],
                "post_action_delay": 30,
                **ruleset_keys,
            }
        ]
    }


def workloads(h: Harness, *names: str) -> None:
    for name in names:
        h.tree.cgroup(f"workload.slice/{name}", pressure=(0, 0, 0))
        h.tree.cgroup(f"workload.slice/{name}/big", current=200 * MB, stat={"anon": 1})
        h.tree.cgroup(f"workload.slice/{name}/small", current=10 * MB, stat={"anon": 1})


def victims(h: Harness) -> list[str]:
    return [line.split()[5] for line in h.kills]


def test_each_matching_cgroup_runs_its_own_copy_relative_to_itself(
    harness: Harness, oolog: Path
) -> None:
    """RulesetWildcardCGroup: detectors and actions see the ruleset cgroup through
    ruleset_cgroup; a detection on one workload acts on that workload only."""
    workloads(harness, "a", "b", "c")
    harness.tree.set_pressure("workload.slice/b", 50, 50, 50)
    harness.load(config())
    harness.tick()
    assert victims(harness) == ["workload.slice/b/big"]
    text = oolog.read_text()
    for name in "abc":
        assert (
            f"Adding runnable ruleset for cgroup: {harness.tree.path('workload.slice/' + name)}"
            in text
        )
    assert (
        f"with ruleset cgroup `{harness.tree.path('workload.slice/b')}`. Running action chain."
        in text
    )


def test_copies_pause_independently(harness: Harness) -> None:
    """RulesetCGroupTwoChainsIndependentlyPaused."""
    workloads(harness, "a", "b")
    harness.tree.set_pressure("workload.slice/a", 50, 50, 50)
    harness.load(config())
    harness.tick()
    assert victims(harness) == ["workload.slice/a/big"]
    harness.tree.set_pressure("workload.slice/b", 50, 50, 50)
    harness.tick()  # a is paused for 30 s, b is not
    assert victims(harness) == ["workload.slice/a/big", "workload.slice/b/big"]
    harness.tick(28)  # 29 s after a's kill
    assert len(harness.kills) == 2
    harness.tick()  # 30 s after a's kill: a fires again; b (killed 1 s later) still paused
    assert victims(harness)[2:] == ["workload.slice/a/big"]


def test_xattr_filter_selects_cgroups_by_xattr_presence(harness: Harness) -> None:
    """RulesetCGroupXattrfilter: a cgroup without the xattr never runs."""
    workloads(harness, "a", "b")
    for name in "ab":
        harness.tree.set_pressure(f"workload.slice/{name}", 50, 50, 50)
    harness.tree.set_xattr("workload.slice/b", "user.oomd_watch", b"")
    harness.load(config(xattr_filter="user.oomd_watch"))
    harness.tick()
    assert victims(harness) == ["workload.slice/b/big"]


def test_copy_is_created_on_first_sight_and_dropped_when_the_cgroup_goes(
    harness: Harness, oolog: Path
) -> None:
    """RulesetCGroupCount: copies appear during runOnce (and are prerun at once),
    and a copy whose cgroup no longer matches is dropped with its state."""
    workloads(harness, "a")
    harness.load(config())
    harness.tick()
    assert harness.engine is not None
    rs = harness.engine.rulesets[0]
    assert list(rs._copies) == [str(harness.tree.path("workload.slice/a"))]
    workloads(harness, "b")
    harness.tick()
    assert len(rs._copies) == 2
    harness.tree.remove("workload.slice/a")
    harness.tick()
    assert list(rs._copies) == [str(harness.tree.path("workload.slice/b"))]
    assert (
        f"Dropping runnable ruleset for cgroup: {harness.tree.path('workload.slice/a')}"
        in oolog.read_text()
    )


def test_new_copy_is_prerun_before_it_runs(harness: Harness) -> None:
    """A copy created mid-tick preruns at once, so kill_by_memory_size_or_growth's
    growth average exists on the copy's first run (RulesetCGroupCount)."""
    workloads(harness, "a")
    harness.load(config())
    harness.tick()
    cg = harness.ctx.cgroups[str(harness.tree.path("workload.slice/a/big"))]
    assert cg.is_cached("average_usage")


def test_ruleset_cgroup_args_are_ignored_outside_a_per_cgroup_ruleset(harness: Harness) -> None:
    """Reference 3.9: outside a per-cgroup ruleset, ruleset_cgroup resolves to nothing."""
    workloads(harness, "a")
    harness.tree.set_pressure("workload.slice/a", 50, 50, 50)
    cfg = config()
    del cfg["rulesets"][0]["cgroup"]
    harness.load(cfg)
    harness.tick()
    assert harness.kills == []
