"""Post-kill hooks: work that runs after a kill (a desktop notification, a page, a
ticket). Configured as the top-level ``postkill_hooks`` list, in the shape of
``prekill_hooks`` (``cgroup`` patterns and/or an ``xattr`` select the victims a hook
runs for); unlike prekill hooks, every matching hook runs, after the kill line is
written, and none is waited for: ``fire`` must return at once (docs/status.md).
"""

from __future__ import annotations

from oomd.cgroup.path import CgroupPattern
from oomd.engine.args import parse_cgroups, parse_string
from oomd.engine.plugin import Plugin, PluginRet, arg
from oomd.engine.prekill import pattern_covers
from oomd.typeshim import TYPE_CHECKING

if TYPE_CHECKING:
    from oomd.cgroup.context import CgroupContext, OomdContext
    from oomd.events import KillEvent


class PostkillHook(Plugin):
    """Base class of post-kill hooks: the ``cgroup`` and ``xattr`` args and matching."""

    cgroup: tuple[CgroupPattern, ...] = arg(parse_cgroups, default=())
    xattr: str = arg(parse_string, default="")

    def can_run_on(self, cg: CgroupContext | None) -> bool:
        if cg is None:
            return False
        if self.xattr and cg.has_xattr(self.xattr):
            return True
        return any(pattern_covers(p, cg.path) for p in self.cgroup)

    def fire(self, event: KillEvent) -> None:
        """Start the hook for ``event``; must not block."""
        raise NotImplementedError

    def run(self, ctx: OomdContext) -> PluginRet:
        raise TypeError("post-kill hooks are not detectors or actions")
