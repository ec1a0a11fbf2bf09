"""Drive the real engine tick by tick on a fake tree with a fake clock (no sleeping)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from oomd.cgroup.context import OomdContext
from oomd.cgroup.system import SystemContext
from oomd.config.compiler import Compiled, compile_config
from oomd.config.errors import ConfigError
from oomd.config.parser import parse_config
from oomd.engine.engine import Engine
from oomd.engine.plugin import Plugin, PluginEnv, PluginRet
from oomd.host import Host, KillerLike
from oomd.kill import Killer
from oomd.log import NullKmsg
from oomd.stats import Stats
from tests.support.tree import FakeProc, FakeTree


def scratch_host(scratch: Path, proc_root: str, killer: KillerLike | None = None) -> Host:
    """A host whose /run, system bus and systemctl are paths under ``scratch`` where
    nothing exists or listens, and whose /proc is ``proc_root``: a plugin given it can
    never reach the machine's sysrq trigger, systemd or D-Bus. ``killer`` defaults to
    the real one on the real /proc (it signals only pids listed in the fake tree's
    cgroup.procs: the test's own children)."""
    return Host(
        killer=killer if killer is not None else Killer(),
        proc_root=proc_root,
        run_root=str(scratch / "run"),
        system_bus_address=f"unix:path={scratch}/no-system-bus",
        systemctl=str(scratch / "no-systemctl"),
        may_panic=True,
    )


class FakeClock:
    def __init__(self, start: float = 1000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class Harness:
    """A fake host: tree + /proc + clock + kmsg + stats, and an engine to tick."""

    def __init__(self, tree: FakeTree, proc: FakeProc, killer: KillerLike | None = None) -> None:
        self.tree = tree
        self.proc = proc
        self.clock = FakeClock()
        self.kmsg = NullKmsg()
        self.stats = Stats()
        self.env = PluginEnv(
            cgroup_fs=tree.fs,
            system=SystemContext(proc.path),
            kmsg=self.kmsg,
            stats=self.stats,
            controllers=None,
            host=scratch_host(tree.root.parent, proc.path, killer),
        )
        self.ctx = OomdContext(tree.fs, self.env.system, clock=self.clock)
        self.engine: Engine | None = None
        self.compiled: Compiled | None = None

    def load(self, config: str | dict[str, Any], dry_run: bool = False) -> Engine:
        text = config if isinstance(config, str) else json.dumps(config)
        self.env.dry_run = dry_run
        self.ir = parse_config(text, "test.json")
        self.compiled = compile_config(self.ir, self.env)
        self.engine = self.compiled.engine
        return self.engine

    def tick(self, count: int = 1, advance: float = 1.0) -> None:
        """Run ``count`` ticks, advancing the clock by ``advance`` before each."""
        assert self.engine is not None, "load() a config first"
        for _ in range(count):
            self.clock.advance(advance)
            self.engine.tick(self.ctx)

    @property
    def kills(self) -> list[str]:
        return [line for line in self.kmsg.lines if line.startswith("oomd kill: ")]

    def detector(self, name: str, **args: Any) -> Plugin:
        """Load a config whose one ruleset has the one detector ``name`` (with
        ``args``) and a ``continue`` action; return the compiled detector."""
        self.load(
            {"rulesets": [ruleset("r", [("g", [plugin(name, **args)])], [plugin("continue")])]}
        )
        assert self.engine is not None
        return self.engine.rulesets[0].detector_groups[0].detectors[0]

    def problems(self, name: str, **args: Any) -> list[str]:
        """The compiler's complaints about the one detector ``name`` with ``args``."""
        try:
            self.detector(name, **args)
        except ConfigError as e:
            return e.problems
        return []

    def run(self, target: Plugin, advance: float = 1.0) -> PluginRet:
        """One tick for one plugin alone: advance the clock, refresh the context,
        prerun and run it."""
        self.clock.advance(advance)
        self.ctx.refresh()
        target.prerun(self.ctx)
        return target.run(self.ctx)


def ruleset(
    name: str,
    detectors: list[tuple[str, list[dict[str, Any]]]],
    actions: list[dict[str, Any]],
    **extra: Any,
) -> dict[str, Any]:
    """A ruleset in config JSON shape."""
    return {
        "name": name,
        "detectors": [[group, *plugins] for group, plugins in detectors],
        "actions": actions,
        **extra,
    }


def plugin(name: str, **args: Any) -> dict[str, Any]:
    return {"name": name, "args": args}


def always_acting(*actions: dict[str, Any], **top: Any) -> dict[str, Any]:
    """A config of one ruleset "r" whose detector group "g" always fires (``continue``)
    and whose chain is ``actions``; ``top`` adds top-level keys (``prekill_hooks``,
    ``protected_cgroups``...). For tests of actions."""
    return {**top, "rulesets": [ruleset("r", [("g", [plugin("continue")])], list(actions))]}
