"""The engine: every ruleset, prerun then run, once per tick, in config order; drop-in
rulesets and prekill hooks layered on top, as upstream's ``engine/Engine.cpp``."""

from __future__ import annotations

from oomd import stats as stat_keys
from oomd.cgroup.context import ActionContext, CgroupContext, OomdContext
from oomd.engine.plugin import Plugin
from oomd.engine.postkill import PostkillHook
from oomd.engine.prekill import PrekillHook, PrekillHookInvocation
from oomd.engine.ruleset import Ruleset
from oomd.events import KillEvent
from oomd.stats import Stats


class DropInUnit:
    """What one drop-in file adds: merged rulesets (each named after its base) and
    prekill hooks."""

    __slots__ = ("prekill_hooks", "rulesets", "warnings")

    def __init__(
        self,
        rulesets: list[Ruleset] | None = None,
        prekill_hooks: list[PrekillHook] | None = None,
        warnings: list[str] | None = None,
    ) -> None:
        self.rulesets = [] if rulesets is None else rulesets
        self.prekill_hooks = [] if prekill_hooks is None else prekill_hooks
        #: Non-fatal findings of the compiler (unknown keys, ...), with their location.
        self.warnings = [] if warnings is None else warnings


class Engine:
    __slots__ = ("_dropin_hooks", "postkill_hooks", "prekill_hooks", "rulesets", "stats")

    def __init__(
        self,
        rulesets: list[Ruleset] | None = None,
        prekill_hooks: list[PrekillHook] | None = None,
        stats: Stats | None = None,
    ) -> None:
        self.rulesets = [] if rulesets is None else rulesets
        self.prekill_hooks = [] if prekill_hooks is None else prekill_hooks
        self.stats = stats
        #: ``postkill_hooks``: every one that matches a victim runs after its kill.
        self.postkill_hooks: list[PostkillHook] = []
        #: Drop-in hooks by tag, the most recently added drop-in first.
        self._dropin_hooks: list[tuple[str, list[PrekillHook]]] = []

    def __repr__(self) -> str:
        return f"Engine(rulesets={self.rulesets!r}, prekill_hooks={self.prekill_hooks!r})"

    # -- ticking ----------------------------------------------------------------

    def prerun(self, ctx: OomdContext) -> None:
        for ruleset in self.rulesets:
            for _, dropin in ruleset.dropins:
                dropin.prerun(ctx)
            ruleset.prerun(ctx)

    def run_once(self, ctx: OomdContext) -> None:
        fired = 0
        for ruleset in self.rulesets:
            for _, dropin in ruleset.dropins:
                fired += dropin.run_once(ctx)
            ruleset.run_once(ctx)
        if self.stats is not None:
            self.stats.increment(stat_keys.DROPIN_FIRED, fired)

    def tick(self, ctx: OomdContext) -> None:
        """One full tick: refresh the context, prerun everything, run everything."""
        ctx.refresh()
        ctx.prekill_hook_handler = self.fire_prekill_hook
        self.prerun(ctx)
        self.run_once(ctx)

    # -- prekill hooks ----------------------------------------------------------

    def fire_prekill_hook(
        self, cg: CgroupContext, action: ActionContext
    ) -> PrekillHookInvocation | None:
        """Fire the first hook that can run on ``cg``: drop-in hooks first (newest
        drop-in first, in file order), then the base config's, in config order."""
        for _, hooks in self._dropin_hooks:
            for hook in hooks:
                if hook.can_run_on(cg):
                    return hook.fire(cg, action)
        for hook in self.prekill_hooks:
            if hook.can_run_on(cg):
                return hook.fire(cg, action)
        return None

    def fire_postkill_hooks(self, event: KillEvent) -> None:
        """A kill event subscriber (oomd.events): start every post-kill hook that
        matches the victim; none blocks (each runs bounded in its own thread)."""
        for hook in self.postkill_hooks:
            if hook.can_run_on(event.target):
                hook.fire(event)

    # -- drop-ins -----------------------------------------------------------------

    def add_dropin(self, tag: str, unit: DropInUnit) -> bool:
        """Add a compiled drop-in under ``tag`` (its file name), replacing any earlier
        version; its rulesets run before their base, newest drop-in first."""
        self.remove_dropin(tag)
        for merged in unit.rulesets:
            base = next((r for r in self.rulesets if r.name == merged.name), None)
            if base is None:
                self.remove_dropin(tag)
                return False
            base.dropins.insert(0, (tag, merged))
            if self.stats is not None:
                self.stats.increment(stat_keys.DROPIN_ADDED, 1)
        if unit.prekill_hooks:
            self._dropin_hooks.insert(0, (tag, list(unit.prekill_hooks)))
        return True

    def remove_dropin(self, tag: str) -> int:
        """Remove every ruleset and hook ``tag`` added; returns how many rulesets."""
        removed = 0
        for base in self.rulesets:
            before = len(base.dropins)
            base.dropins = [(t, r) for t, r in base.dropins if t != tag]
            n = before - len(base.dropins)
            if n:
                removed += n
                if self.stats is not None:
                    self.stats.increment(stat_keys.DROPIN_ADDED, -n)
        self._dropin_hooks = [(t, h) for t, h in self._dropin_hooks if t != tag]
        return removed

    def plugins(self) -> list[tuple[Ruleset, Plugin]]:
        found: list[tuple[Ruleset, Plugin]] = []
        for ruleset in self.rulesets:
            for group in ruleset.detector_groups:
                found.extend((ruleset, d) for d in group.detectors)
            found.extend((ruleset, a) for a in ruleset.actions)
        return found
