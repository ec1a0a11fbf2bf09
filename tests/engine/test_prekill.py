"""Prekill hook selection (upstream engine/PrekillHook.h, Engine.cpp firePrekillHook;
ConfigCompilerTest PrekillHook, PrekillHookDropinTest DropinsTakePrecedence,
MostRecentWins, RemoveAndReAddBumpsPriority; CgroupPathTest
HasDescendantWithPrefixMatchingTest)."""

from __future__ import annotations

from pathlib import Path

import pytest

from oomd.cgroup.context import ActionContext, CgroupContext, OomdContext
from oomd.cgroup.path import CgroupPath, CgroupPattern
from oomd.engine.engine import DropInUnit, Engine
from oomd.engine.plugin import PluginEnv
from oomd.engine.prekill import PrekillHook, PrekillHookInvocation, pattern_covers
from oomd.plugins.prekill_hooks import DummyPrekillHook
from tests.support.tree import FakeTree


@pytest.mark.parametrize(
    ("pattern", "path", "covers"),
    [
        ("/", "a/b", True),
        ("a/b", "a/b", True),
        ("a/b", "a", True),  # an ancestor of a match
        ("a/b", "a/b/c", True),  # a descendant of a match
        ("a/*", "a/x/y", True),
        ("*/b", "z/b", True),
        ("a/b", "a/c", False),
        ("a/b*", "a/bc", False),  # "*" only as a whole component
        ("x", "a", False),
    ],
)
def test_pattern_covers_self_ancestors_and_descendants(
    pattern: str, path: str, covers: bool
) -> None:
    assert pattern_covers(CgroupPattern("/fs", pattern), CgroupPath("/fs", path)) is covers


class Recording(PrekillHook):
    name = "recording"

    def __init__(self, env: PluginEnv, cgroup: str, label: str) -> None:
        super().__init__(env, {"cgroup": (CgroupPattern(env.cgroup_fs, cgroup),)})
        self.label = label
        self.fired: list[str] = []

    def fire(self, cg: CgroupContext, action: ActionContext) -> PrekillHookInvocation:
        self.fired.append(cg.path.relative)
        return DummyPrekillHook(self.env, {}).fire(cg, action)


def fired_label(engine: Engine, ctx: OomdContext, rel: str, hooks: list[Recording]) -> str | None:
    cg = ctx.get(CgroupPath(ctx.cgroup_fs, rel))
    assert cg is not None
    before = {h.label: len(h.fired) for h in hooks}
    engine.fire_prekill_hook(cg, ActionContext("r", "g"))
    labels = [h.label for h in hooks if len(h.fired) > before[h.label]]
    assert len(labels) <= 1, "at most one hook per kill"
    return labels[0] if labels else None


def test_first_matching_hook_fires_drop_ins_first_newest_first(tree: FakeTree, oolog: Path) -> None:
    tree.cgroup("workload.slice/a")
    tree.cgroup("system.slice/b")
    env = PluginEnv(cgroup_fs=tree.fs)
    ctx = OomdContext(tree.fs)
    base1, base2 = Recording(env, "system.slice", "base1"), Recording(env, "/", "base2")
    old, new = Recording(env, "workload.slice/*", "old"), Recording(env, "workload.slice", "new")
    hooks = [base1, base2, old, new]
    engine = Engine([], [base1, base2])
    assert fired_label(engine, ctx, "system.slice/b", hooks) == "base1"
    assert fired_label(engine, ctx, "workload.slice/a", hooks) == "base2"
    engine.add_dropin("old.json", DropInUnit(prekill_hooks=[old]))
    assert fired_label(engine, ctx, "workload.slice/a", hooks) == "old"
    engine.add_dropin("new.json", DropInUnit(prekill_hooks=[new]))
    assert fired_label(engine, ctx, "workload.slice/a", hooks) == "new"
    engine.add_dropin("old.json", DropInUnit(prekill_hooks=[old]))  # re-added: newest again
    assert fired_label(engine, ctx, "workload.slice/a", hooks) == "old"
    engine.remove_dropin("old.json")
    engine.remove_dropin("new.json")
    assert fired_label(engine, ctx, "workload.slice/a", hooks) == "base2"
    assert "Prekill hook fired on workload.slice/a" in oolog.read_text()


def test_hook_with_xattr_arg_runs_on_cgroups_carrying_it(tree: FakeTree) -> None:
    tree.cgroup("a")
    tree.cgroup("b")
    tree.set_xattr("b", "user.oomd_dump")
    env = PluginEnv(cgroup_fs=tree.fs)
    ctx = OomdContext(tree.fs)
    hook = DummyPrekillHook(env, {"xattr": "user.oomd_dump"})
    a, b = ctx.get(CgroupPath(tree.fs, "a")), ctx.get(CgroupPath(tree.fs, "b"))
    assert a is not None and b is not None
    assert not hook.can_run_on(a) and hook.can_run_on(b)
