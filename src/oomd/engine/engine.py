"""The engine: every ruleset, prerun then run, once per tick, in config order."""

from __future__ import annotations

from dataclasses import dataclass, field

from oomd.cgroup.context import OomdContext
from oomd.engine.plugin import Plugin
from oomd.engine.ruleset import Ruleset


@dataclass
class Engine:
    rulesets: list[Ruleset] = field(default_factory=list)
    prekill_hooks: list[Plugin] = field(default_factory=list)

    def prerun(self, ctx: OomdContext) -> None:
        for ruleset in self.rulesets:
            ruleset.prerun(ctx)

    def run_once(self, ctx: OomdContext) -> None:
        for ruleset in self.rulesets:
            ruleset.run_once(ctx)

    def tick(self, ctx: OomdContext) -> None:
        """One full tick: refresh the context, prerun everything, run everything."""
        ctx.refresh()
        self.prerun(ctx)
        self.run_once(ctx)

    def plugins(self) -> list[tuple[Ruleset, Plugin]]:
        found: list[tuple[Ruleset, Plugin]] = []
        for ruleset in self.rulesets:
            for group in ruleset.detector_groups:
                found.extend((ruleset, d) for d in group.detectors)
            found.extend((ruleset, a) for a in ruleset.actions)
        return found
