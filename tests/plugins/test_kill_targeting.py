"""``protected_cgroups``, ``prefer`` and ``avoid`` (issue 17) across every kill plugin,
built-in and third-party, through the one kill core: two candidates the heuristic
cannot tell apart (the first by path wins a tie), and the config turning the choice
around. A fake killer on the plugin's host records kills; nothing is signalled."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from oomd.cgroup.context import CgroupContext, OomdContext
from oomd.config.armed import describe
from oomd.config.errors import ConfigError
from oomd.engine.kill_base import KillPlugin
from oomd.kill import KillReport
from oomd.plugins import registry
from tests.support.harness import Harness, always_acting, plugin, ruleset
from tests.support.tree import FakeProc, FakeTree

MB = 1 << 20


class ThirdParty(KillPlugin):
    """A third-party kill plugin: ranks by nothing at all."""

    name = "kill_third_party_for_test"

    def rank(self, ctx: OomdContext, cgroups: list[CgroupContext]) -> list[CgroupContext]:
        return cgroups

    def pick_reason(
        self, ctx: OomdContext, target: CgroupContext, peers: list[CgroupContext]
    ) -> str:
        return self.picked(target)


#: Each kill plugin with the args it needs here.
PLUGINS: dict[str, dict[str, str]] = {
    "kill_by_memory_size_or_growth": {},
    "kill_by_pressure": {"resource": "memory"},
    "kill_by_swap_usage": {"threshold": "1"},
    "kill_by_pg_scan": {},
    "kill_by_io_cost": {},
    ThirdParty.name: {},
}


class Recorder:
    def __init__(self, tree: FakeTree) -> None:
        self.tree = tree
        self.killed: list[str] = []

    def kill(self, cgroup_dir: str, *, freeze: bool = False, reap: bool = True) -> KillReport:
        self.killed.append(str(Path(cgroup_dir).relative_to(self.tree.root)))
        return KillReport(killed=1, pids=[4242])


@pytest.fixture(autouse=True)
def third_party(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(
        registry._external,
        ThirdParty.name,
        registry.External(ThirdParty.name, "test", cls=ThirdParty),
    )


def twins(tree: FakeTree, pgscan: int) -> None:
    for name in ("a", "b"):
        tree.cgroup(
            f"workload.slice/{name}",
            current=100 * MB,
            swap=50 * MB,
            pressure=(10.0, 10.0, 10.0),
            stat={"anon": 100 * MB, "pgscan": pgscan},
            procs=[4242],
            populated=True,
        )


def kill_once(
    tree: FakeTree, proc: FakeProc, name: str, top: dict[str, Any], **args: str
) -> list[str]:
    recorder = Recorder(tree)
    h = Harness(tree, proc, recorder)
    proc.meminfo(swap_total=1024 * MB, swap_free=512 * MB)
    twins(tree, 100)
    h.load(always_acting(plugin(name, cgroup="workload.slice/*", **PLUGINS[name], **args), **top))
    assert h.engine is not None
    h.engine.prerun(h.ctx)  # history for the rates
    twins(tree, 200)
    h.tick()
    # kill_by_pg_scan needs a run on the previous tick; the others killed already
    # and their ruleset is paused.
    twins(tree, 300)
    h.tick()
    return recorder.killed


@pytest.mark.parametrize("name", PLUGINS)
def test_a_tie_goes_to_the_first_by_path(tree: FakeTree, proc: FakeProc, name: str) -> None:
    assert kill_once(tree, proc, name, {}) == ["workload.slice/a"]


@pytest.mark.parametrize("name", PLUGINS)
def test_protected_cgroups_are_never_victims(tree: FakeTree, proc: FakeProc, name: str) -> None:
    assert kill_once(tree, proc, name, {"protected_cgroups": ["workload.slice/a"]}) == [
        "workload.slice/b"
    ]


@pytest.mark.parametrize("name", PLUGINS)
def test_protection_covers_descendants_and_patterns(
    tree: FakeTree, proc: FakeProc, name: str
) -> None:
    tree.cgroup("workload.slice/a/inner", current=MB, stat={"anon": MB}, procs=[4242])
    killed = kill_once(tree, proc, name, {"protected_cgroups": ["*/a"]}, recursive="true")
    assert killed == ["workload.slice/b"]


@pytest.mark.parametrize("name", PLUGINS)
def test_a_cgroup_holding_a_protected_one_is_not_killed(
    tree: FakeTree, proc: FakeProc, name: str
) -> None:
    """Killing workload.slice/a would kill its protected child with it."""
    tree.cgroup("workload.slice/a/sshd.service", current=MB, stat={"anon": MB}, procs=[4242])
    killed = kill_once(tree, proc, name, {"protected_cgroups": ["workload.slice/a/sshd.service"]})
    assert killed == ["workload.slice/b"]


@pytest.mark.parametrize("name", PLUGINS)
def test_prefer_puts_a_cgroup_first(tree: FakeTree, proc: FakeProc, name: str) -> None:
    assert kill_once(tree, proc, name, {}, prefer="workload.slice/b") == ["workload.slice/b"]


@pytest.mark.parametrize("name", PLUGINS)
def test_avoid_puts_a_cgroup_last(tree: FakeTree, proc: FakeProc, name: str) -> None:
    assert kill_once(tree, proc, name, {}, avoid="workload.slice/a") == ["workload.slice/b"]


def test_the_config_wins_over_the_xattrs(tree: FakeTree, proc: FakeProc) -> None:
    tree.cgroup("workload.slice/a")
    tree.set_xattr("workload.slice/a", "trusted.oomd_prefer")
    name = "kill_by_memory_size_or_growth"
    assert kill_once(tree, proc, name, {}) == ["workload.slice/a"]  # the xattr alone
    assert kill_once(tree, proc, name, {}, avoid="workload.slice/a") == ["workload.slice/b"]


def test_avoid_wins_when_both_patterns_match(tree: FakeTree, proc: FakeProc) -> None:
    killed = kill_once(
        tree,
        proc,
        "kill_by_pressure",
        {},
        prefer="workload.slice/*",
        avoid="workload.slice/a",
    )
    assert killed == ["workload.slice/b"]


def test_prefer_takes_a_json_array(tree: FakeTree, proc: FakeProc) -> None:
    recorder = Recorder(tree)
    h = Harness(tree, proc, recorder)
    twins(tree, 1)
    h.load(
        json.dumps(
            {
                "rulesets": [
                    {
                        "name": "r",
                        "detectors": [["g", {"name": "continue"}]],
                        "actions": [
                            {
                                "name": "kill_by_memory_size_or_growth",
                                "args": {
                                    "cgroup": "workload.slice/*",
                                    "prefer": ["workload.slice/x", "workload.slice/b"],
                                },
                            }
                        ],
                    }
                ]
            }
        )
    )
    h.tick()
    assert recorder.killed == ["workload.slice/b"]


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (
            {"a": 1},
            '"protected_cgroups" must be an array of cgroup patterns (strings), not an object',
        ),
        ([1], '"protected_cgroups" must be an array of cgroup patterns (strings), not an array'),
        (["../etc"], "cgroup pattern '../etc'"),
    ],
)
def test_bad_protected_cgroups_are_config_errors(
    harness: Harness, value: object, message: str
) -> None:
    config = always_acting(plugin("continue"), protected_cgroups=value)
    with pytest.raises(ConfigError) as e:
        harness.load(config)
    assert message in "\n".join(e.value.problems)


def test_check_says_which_cgroups_are_protected(harness: Harness) -> None:
    harness.tree.cgroup("system.slice/sshd.service")
    harness.tree.cgroup("system.slice/other.service")
    engine = harness.load(
        always_acting(
            plugin("kill_by_memory_size_or_growth", cgroup="system.slice/*"),
            protected_cgroups=["system.slice/sshd*", "init.scope"],
        )
    )
    assert describe(engine)[0] == (
        "protected_cgroups: system.slice/sshd*, init.scope (never killed by any plugin, "
        "descendants included, nor any cgroup holding one; matching now: "
        "system.slice/sshd.service)"
    )
    unprotected = harness.load(
        {"rulesets": [ruleset("r", [("g", [plugin("continue")])], [plugin("continue")])]}
    )
    assert not describe(unprotected)[0].startswith("protected_cgroups")
