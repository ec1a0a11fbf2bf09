"""kill_by_pg_scan (upstream plugins/KillPgScan-inl.h; CorePluginsTest KillPgScanTest.*).
Ranking is tested as a pure function on hand-made cgroups; the two-tick kill end to end
on a fake tree with processes the test spawned."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from oomd.cgroup.context import KillPreference
from oomd.engine.plugin import PluginRet
from oomd.plugins.kill_pg_scan import KillPgScan, rank_by_pg_scan
from tests.support.harness import Harness, plugin, ruleset
from tests.support.procs import Spawner

P, N, A = KillPreference.PREFER, KillPreference.NORMAL, KillPreference.AVOID


@dataclass
class View:
    name: str
    rate: int | None
    preference: KillPreference = N

    def pg_scan_rate(self) -> int | None:
        return self.rate

    def kill_preference(self) -> KillPreference:
        return self.preference


def rank(views: list[View]) -> list[str]:
    return [v.name for v in rank_by_pg_scan(views)]


def test_highest_rate_first() -> None:
    """KillsHighestPgScan: deltas 10, 30, 50 (and 100 for the sibling in MultiCgroup)."""
    views = [View("c1", 10), View("c2", 30), View("c3", 50)]
    assert rank(views) == ["c3", "c2", "c1"]
    assert rank([*views, View("sibling", 100)])[0] == "sibling"


def test_zero_negative_and_unknown_rates_are_not_candidates() -> None:
    """DoNotKillZeroPgScan (HEAD; 0.5.0 had no filter). A counter that went backwards
    (a re-created cgroup) is not a scan either."""
    assert rank([View("zero", 0), View("none", None), View("back", -5)]) == []


def test_preferences_dominate_among_scanning_cgroups_only() -> None:
    views = [View("fast", 900), View("slow", 1, preference=P), View("idle", 0, preference=P)]
    assert rank(views) == ["slow", "fast"]


# --- the two-tick kill through the engine ----------------------------------------------


def load(h: Harness, cgroup: str = "one_high/*", **args: Any) -> KillPgScan:
    h.load(
        {
            "rulesets": [
                ruleset(
                    "scan",
                    [("hot", [plugin("continue")])],
                    [plugin("kill_by_pg_scan", cgroup=cgroup, post_action_delay=0, **args)],
                )
            ]
        }
    )
    assert h.engine is not None
    action = h.engine.rulesets[0].actions[0]
    assert isinstance(action, KillPgScan)
    return action


def scanned(h: Harness, rel: str, pgscan: int, **kw: Any) -> None:
    h.tree.cgroup(rel, stat={"anon": 1, "pgscan": pgscan}, **kw)


def test_first_run_collects_then_the_next_tick_kills_the_biggest_delta(
    harness: Harness, spawner: Spawner, oolog: Path
) -> None:
    """KillsHighestPgScan: ASYNC_PAUSED on the first run, then the highest delta dies
    (cumulative values 10000/5000/6000 grow by 10/30/50)."""
    procs = {name: spawner.sleeper() for name in ("c1", "c2", "c3")}
    start = {"c1": 10000, "c2": 5000, "c3": 6000}
    for name, value in start.items():
        scanned(harness, f"one_high/{name}", value, procs=[procs[name].pid], current=1 << 20)
    action = load(harness)
    harness.ctx.refresh()
    assert action.run(harness.ctx) is PluginRet.ASYNC_PAUSED
    assert harness.kills == []
    for name, delta in (("c1", 10), ("c2", 30), ("c3", 50)):
        scanned(harness, f"one_high/{name}", start[name] + delta)
    harness.ctx.refresh()
    assert action.run(harness.ctx) is PluginRet.STOP
    assert spawner.is_dead(procs["c3"])
    assert not any(spawner.is_dead(procs[n], timeout=0.1) for n in ("c1", "c2"))
    # Run directly (no engine), so there is no ruleset or detector group to name.
    assert harness.kills == [
        "oomd kill: 0.00 0.00 0.00 one_high/c3 1048576 ruleset:[] detectorgroup:[] "
        "killer:kill_by_pg_scan v2"
    ]
    assert (
        'Picked "one_high/c3" (1MB) based on pg scan rate at 50 with kill preference NORMAL'
        in oolog.read_text()
    )


def test_engine_resumes_the_paused_action_on_the_next_tick(harness: Harness) -> None:
    scanned(harness, "one_high/a", 100)
    scanned(harness, "one_high/b", 100)
    load(harness, dry=True)
    harness.tick()
    assert harness.kills == []
    scanned(harness, "one_high/b", 150)
    harness.tick()
    assert [line.split()[5] for line in harness.kills] == ["one_high/b"]


def test_no_scanning_means_no_kill(harness: Harness) -> None:
    """DoNotKillZeroPgScan: unchanged counters -> CONTINUE."""
    scanned(harness, "one_high/a", 10000)
    scanned(harness, "sibling/a", 20000)
    action = load(harness, cgroup="one_high/*,sibling/*", dry=True)
    harness.ctx.refresh()
    assert action.run(harness.ctx) is PluginRet.ASYNC_PAUSED
    harness.ctx.refresh()
    assert action.run(harness.ctx) is PluginRet.CONTINUE
    assert harness.kills == []


def test_a_gap_in_collection_starts_over(harness: Harness) -> None:
    """Data older than the previous tick is stale: collect again first."""
    scanned(harness, "one_high/a", 100)
    action = load(harness, dry=True)
    harness.ctx.refresh()
    assert action.run(harness.ctx) is PluginRet.ASYNC_PAUSED
    harness.ctx.refresh()  # a tick on which the action did not run
    scanned(harness, "one_high/a", 200)
    harness.ctx.refresh()
    assert action.run(harness.ctx) is PluginRet.ASYNC_PAUSED
    scanned(harness, "one_high/a", 300)
    harness.ctx.refresh()
    assert action.run(harness.ctx) is PluginRet.STOP


def test_dry_run_kills_nothing(harness: Harness, spawner: Spawner) -> None:
    """DoesntKillsHighestPgScanDry."""
    victim = spawner.sleeper()
    scanned(harness, "one_high/a", 1, procs=[victim.pid])
    action = load(harness, dry=True)
    harness.ctx.refresh()
    action.run(harness.ctx)
    scanned(harness, "one_high/a", 2)
    harness.ctx.refresh()
    assert action.run(harness.ctx) is PluginRet.STOP
    assert not spawner.is_dead(victim, timeout=0.2)
    assert harness.kills[0].endswith("killer:(dry)kill_by_pg_scan v2")


def test_can_target_recursively(harness: Harness) -> None:
    """CanTargetRecursively: A (+1080) beats B (+970); inside A, Z (+590) beats X
    (+490); "sibling" is not a candidate however fast it scans."""
    values = {"A": 20, "A/Z": 10, "A/X": 10, "B": 30, "sibling": 50}
    for rel, value in values.items():
        scanned(harness, rel, value)
    action = load(harness, cgroup="A,B", recursive=True, debug=True, dry=True)
    harness.ctx.refresh()
    assert action.run(harness.ctx) is PluginRet.ASYNC_PAUSED
    for rel, value in {"A": 1100, "A/Z": 600, "A/X": 500, "B": 1000, "sibling": 30000}.items():
        scanned(harness, rel, value)
    harness.ctx.refresh()
    assert action.run(harness.ctx) is PluginRet.STOP
    assert [line.split()[5] for line in harness.kills] == ["A/Z"]


def test_missing_pgscan_is_reported_once(harness: Harness, oolog: Path) -> None:
    scanned(harness, "one_high/a", 1)
    harness.tree.cgroup("one_high/b", stat={"anon": 1})
    harness.tree.cgroup("one_high/c", stat={"anon": 1})
    action = load(harness, dry=True)
    harness.ctx.refresh()
    action.run(harness.ctx)
    scanned(harness, "one_high/a", 2)
    harness.ctx.refresh()
    action.run(harness.ctx)
    assert oolog.read_text().count("couldn't read pgscan data in 2/3 cgroups") == 1
