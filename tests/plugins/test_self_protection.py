"""The daemon never kills its own cgroup or an ancestor of it, whatever the spelling
of the victim's path (issue 12, item 7): the guard compares identities, not strings."""

from __future__ import annotations

from oomd.cgroup.path import CgroupPath
from tests.support.harness import Harness, always_acting, plugin


def test_an_ancestor_spelled_with_dot_dot_is_still_protected(harness: Harness) -> None:
    harness.tree.cgroup("system.slice/oomd.service", current=1, stat={"anon": 1})
    harness.tree.cgroup("system.slice/other.service", current=1, stat={"anon": 1})
    harness.env.own_cgroup = str(harness.tree.path("system.slice/oomd.service"))
    harness.load(
        always_acting(plugin("kill_by_memory_size_or_growth", cgroup="system.slice/*", dry=True))
    )
    assert harness.engine is not None
    killer = harness.engine.rulesets[0].actions[0]
    harness.ctx.refresh()
    # No pattern can spell this any more (".." is a config error); the guard must hold
    # on its own all the same.
    for spelling in ("system.slice/other.service/..", "system.slice/oomd.service/.", ""):
        cg = harness.ctx.get(CgroupPath(harness.tree.fs, [p for p in spelling.split("/") if p]))
        assert cg is not None
        assert killer.is_protected(harness.ctx, cg), spelling  # type: ignore[attr-defined]
    other = harness.ctx.get(CgroupPath(harness.tree.fs, "system.slice/other.service"))
    assert other is not None
    assert not killer.is_protected(harness.ctx, other)  # type: ignore[attr-defined]
