"""Prekill hooks: work that runs just before a kill (a heap dump, a notification...).

As upstream (``engine/PrekillHook.h``, ``docs/prekill_hooks.md``): hooks are configured
at the top level (and in drop-ins); before each kill attempt the first hook that can
run on the victim fires, drop-in hooks first (newest drop-in first); ``fire`` must not
block - it returns an invocation the kill plugin polls once per tick (yielding its
action chain with ASYNC_PAUSED meanwhile) until it finishes or the ruleset's
``prekill_hook_timeout`` window, shared by the whole action chain, runs out.
"""

from __future__ import annotations

from oomd.cgroup.path import CgroupPath, CgroupPattern
from oomd.engine.args import parse_cgroups, parse_string
from oomd.engine.plugin import Plugin, PluginRet, arg
from oomd.typeshim import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from oomd.cgroup.context import ActionContext, CgroupContext, OomdContext


class PrekillHookInvocation(Protocol):
    """A running hook. Polled from the main loop; neither method may block."""

    def finished(self) -> bool: ...

    def abandon(self) -> None:
        """Called when the timeout passed or the kill no longer needs the hook."""
        ...


def pattern_covers(pattern: CgroupPattern, path: CgroupPath) -> bool:
    """Upstream's ``hasDescendantWithPrefixMatching``: compare components over the
    shorter length, ``*`` matching any one component. So a pattern matches the cgroup
    itself, its ancestors and its descendants; ``/`` matches everything, and ``*``
    works only as a whole component (``foo/b*`` is literal)."""
    return all(
        want == "*" or want == have for want, have in zip(pattern.parts, path.parts, strict=False)
    )


class PrekillHook(Plugin):
    """Base class of prekill hooks: the ``cgroup`` and ``xattr`` args and matching."""

    cgroup: tuple[CgroupPattern, ...] = arg(parse_cgroups, default=())
    xattr: str = arg(parse_string, default="")

    def can_run_on(self, cg: CgroupContext) -> bool:
        if self.xattr and cg.has_xattr(self.xattr):
            return True
        return any(pattern_covers(p, cg.path) for p in self.cgroup)

    def fire(self, cg: CgroupContext, action: ActionContext) -> PrekillHookInvocation:
        raise NotImplementedError

    def run(self, ctx: OomdContext) -> PluginRet:
        raise TypeError("prekill hooks are not detectors or actions")
