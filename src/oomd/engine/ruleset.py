"""Rulesets: detector groups (AND inside, OR across) guarding an action chain.

Semantics follow upstream's ``Ruleset.cpp``: every detector of every group runs every
tick (sliding-window detectors must see every tick); the first firing group names the
action context; a paused ruleset still runs its detectors; an action that returns
ASYNC_PAUSED is resumed on the next unpaused tick whether or not a group fires.

A plugin that fails (raises, or is abandoned by the watchdog: oomd.engine.guard) never
escapes the tick. A failed detector counts as CONTINUE - it does not veto its group -
but is no evidence either: a group fires only if at least one of its detectors
answered and none answered STOP. A failed action counts as STOP: the chain ends and the
ruleset pauses (docs/writing_a_plugin.md, "Isolation").
"""

from __future__ import annotations

from collections.abc import Callable

from oomd import log
from oomd.cgroup.context import ActionContext, OomdContext
from oomd.cgroup.path import CgroupPath, CgroupPattern
from oomd.engine import guard
from oomd.engine.plugin import Plugin, PluginRet
from oomd.kill import new_kill_uuid


def run_plugin(
    plugin: Plugin, ctx: OomdContext, silence: bool, failure: PluginRet, ruleset: str = ""
) -> PluginRet | None:
    """Run one plugin's ``run`` with logs silenced if asked; None if it failed (the
    guard logged and counted it; ``failure`` is what the caller makes of that)."""
    previous = log.set_silenced(silence) if silence else log.is_silenced()
    try:
        return guard.call(plugin, "run", ctx, ruleset, failure.value)
    finally:
        log.set_silenced(previous)


def prerun_plugin(plugin: Plugin, ctx: OomdContext, ruleset: str = "") -> None:
    if plugin.unavailable is not None:
        return
    guard.call(plugin, "prerun", ctx, ruleset, "done")


class DetectorGroup:
    __slots__ = ("detectors", "fired", "last_fired", "name")

    def __init__(self, name: str, detectors: list[Plugin]) -> None:
        self.name = name
        self.detectors = detectors
        #: The last tick's verdict and the tick time it last fired (``oomd status``).
        self.fired: bool | None = None
        self.last_fired: float | None = None

    def __repr__(self) -> str:
        return f"DetectorGroup({self.name!r}, {self.detectors!r})"

    def prerun(self, ctx: OomdContext, ruleset: str = "") -> None:
        for detector in self.detectors:
            prerun_plugin(detector, ctx, ruleset)

    def check(self, ctx: OomdContext, silence_plugins: bool, ruleset: str = "") -> bool:
        """Run every detector (no short-circuit); fires iff none returned STOP (or
        cannot run on this host) and at least one answered: a detector that failed
        counts as CONTINUE but a group of failed detectors does not fire."""
        vetoed = answered = False
        for detector in self.detectors:
            if detector.unavailable is not None:
                vetoed = True
                continue
            ret = run_plugin(detector, ctx, silence_plugins, PluginRet.CONTINUE, ruleset)
            if ret is None:
                continue
            answered = True
            if ret is PluginRet.STOP:
                vetoed = True
        self.fired = answered and not vetoed
        if self.fired:
            self.last_fired = ctx.now()
        return self.fired


class _Suspended:
    __slots__ = ("action_context", "action_index")

    def __init__(self, action_index: int, action_context: ActionContext) -> None:
        self.action_index = action_index
        self.action_context = action_context


class Ruleset:
    __slots__ = (
        "_copies",
        "_pause_override",
        "_suspended",
        "actions",
        "cgroups",
        "detector_groups",
        "disable_on_drop_in",
        "dropins",
        "factory",
        "name",
        "paused_until",
        "post_action_delay",
        "prekill_hook_timeout",
        "silence_engine",
        "silence_plugins",
        "xattr_filter",
    )

    def __init__(
        self,
        name: str,
        detector_groups: list[DetectorGroup],
        actions: list[Plugin],
        post_action_delay: int = 15,
        prekill_hook_timeout: int = 5,
        silence_engine: bool = False,
        silence_plugins: bool = False,
        disable_on_drop_in: bool = False,
        dropins: list[tuple[str, Ruleset]] | None = None,
        cgroups: tuple[CgroupPattern, ...] = (),
        xattr_filter: str = "",
        factory: Callable[[], Ruleset | None] | None = None,
        paused_until: float = float("-inf"),
    ) -> None:
        self.name = name
        self.detector_groups = detector_groups
        self.actions = actions
        self.post_action_delay = post_action_delay
        self.prekill_hook_timeout = prekill_hook_timeout
        self.silence_engine = silence_engine
        self.silence_plugins = silence_plugins
        #: Drop-in settings of a base ruleset (the ``drop-in`` key).
        self.disable_on_drop_in = disable_on_drop_in
        #: Drop-in rulesets targeting this base, newest first, with their tags.
        self.dropins: list[tuple[str, Ruleset]] = [] if dropins is None else dropins
        #: Per-cgroup ruleset (upstream HEAD): run once per cgroup matching these
        #: patterns (and carrying ``xattr_filter``, if set), each with its own copy of
        #: the plugins.
        self.cgroups = cgroups
        self.xattr_filter = xattr_filter
        #: Builds a fresh copy of this ruleset (new plugin instances, same args).
        self.factory = factory
        self.paused_until = paused_until
        self._pause_override: float | None = None
        self._suspended: _Suspended | None = None
        self._copies: dict[str, tuple[CgroupPath, Ruleset]] = {}

    def __repr__(self) -> str:
        return (
            f"Ruleset(name={self.name!r}, detector_groups={self.detector_groups!r}, "
            f"actions={self.actions!r})"
        )

    @property
    def enabled(self) -> bool:
        """With ``disable-on-drop-in`` a base ruleset neither preruns nor runs while any
        drop-in targets it."""
        return not (self.disable_on_drop_in and self.dropins)

    def pause_actions(self, seconds: float) -> None:
        """Called by a kill plugin with its own ``post_action_delay`` on success: the
        pause after this STOP lasts ``seconds`` instead of the ruleset's delay."""
        self._pause_override = seconds

    def prerun(self, ctx: OomdContext) -> None:
        if not self.enabled:
            return
        if not self.cgroups:
            self._prerun(ctx, None)
            return
        for path, copy in self._copies.values():
            copy._prerun(ctx, path)

    def _prerun(self, ctx: OomdContext, cgroup: CgroupPath | None) -> None:
        ctx.ruleset_cgroup = cgroup
        try:
            for group in self.detector_groups:
                group.prerun(ctx, self.name)
            for action in self.actions:
                prerun_plugin(action, ctx, self.name)
        finally:
            ctx.ruleset_cgroup = None

    def _engine_log(self, msg: str) -> None:
        if not self.silence_engine:
            log.info(msg, depth=2)

    def run_once(self, ctx: OomdContext) -> int:
        """One tick. Returns 1 if an action chain ran to completion or STOP."""
        if not self.enabled:
            return 0
        if not self.cgroups:
            return self._run_once(ctx)
        return self._run_per_cgroup(ctx)

    def _run_per_cgroup(self, ctx: OomdContext) -> int:
        """Run a copy of the ruleset for each matching cgroup; copies of cgroups that
        no longer match are dropped with their state (upstream's Ruleset::runOnce)."""
        assert self.factory is not None
        visited: set[str] = set()
        result = 0
        try:
            matched = ctx.resolve(self.cgroups)
        except Exception as e:
            # Outside any plugin's guard: a failure here stays in this ruleset, and
            # its copies are kept for the next tick.
            log.always(
                f'Ruleset "{self.name}": resolving its cgroups failed: {type(e).__name__}: {e}'
            )
            return 0
        for cg in matched:
            key = cg.path.absolute
            if self.xattr_filter:
                names = cg.xattr_names()
                if names is None:
                    log.info(f"Failed to fetch xattr: {self.xattr_filter} for cgroup: {key}")
                    continue
                if self.xattr_filter not in names:
                    continue
            entry = self._copies.get(key)
            if entry is None:
                copy = self.factory()
                if copy is None:
                    continue  # could not build the plugins; the factory logged why
                log.info(f"Adding runnable ruleset for cgroup: {key}")
                entry = self._copies[key] = (cg.path, copy)
                copy._prerun(ctx, cg.path)
            ctx.ruleset_cgroup = cg.path
            try:
                result = entry[1]._run_once(ctx)
            finally:
                ctx.ruleset_cgroup = None
            visited.add(key)
        for key in [k for k in self._copies if k not in visited]:
            log.info(f"Dropping runnable ruleset for cgroup: {key}")
            del self._copies[key]
        return result

    def _run_once(self, ctx: OomdContext) -> int:
        fired_group: DetectorGroup | None = None
        for group in self.detector_groups:
            if group.check(ctx, self.silence_plugins, self.name) and fired_group is None:
                fired_group = group
        now = ctx.now()
        if fired_group is not None:
            ctx.action_context = ActionContext(
                self.name, fired_group.name, new_kill_uuid(), now + self.prekill_hook_timeout
            )
        ctx.invoking_ruleset = self
        try:
            # A delay of 0 must not pause, hence strictly "now < until".
            if now < self.paused_until:
                return 0
            cgroup = ctx.ruleset_cgroup.absolute if ctx.ruleset_cgroup is not None else ""
            if self._suspended is not None:
                suspended, self._suspended = self._suspended, None
                ctx.action_context = suspended.action_context
                self._engine_log(
                    f"DetectorGroup={suspended.action_context.detector_group} has fired for "
                    f"Ruleset={self.name} with ruleset cgroup `{cgroup}`. Running action chain from state."
                )
                return self._run_chain(ctx, suspended.action_index)
            if fired_group is None:
                return 0
            self._engine_log(
                f"DetectorGroup={fired_group.name} has fired for Ruleset={self.name} "
                f"with ruleset cgroup `{cgroup}`. Running action chain."
            )
            return self._run_chain(ctx, 0)
        finally:
            ctx.action_context = ActionContext()
            ctx.invoking_ruleset = None

    def _run_chain(self, ctx: OomdContext, start: int) -> int:
        for index in range(start, len(self.actions)):
            action = self.actions[index]
            self._engine_log(f"Running Action={action.name}")
            if action.unavailable is not None:
                # Named at start-up; an action that cannot work here is skipped.
                ret = PluginRet.CONTINUE
            else:
                ret = (
                    run_plugin(action, ctx, self.silence_plugins, PluginRet.STOP, self.name)
                    or PluginRet.STOP
                )
            if ret is PluginRet.CONTINUE:
                self._engine_log(
                    f"Action={action.name} returned CONTINUE. Continuing action chain."
                )
                continue
            if ret is PluginRet.STOP:
                self._engine_log(f"Action={action.name} returned STOP. Terminating action chain.")
                delay = (
                    self.post_action_delay if self._pause_override is None else self._pause_override
                )
                self.paused_until = ctx.now() + delay
                self._pause_override = None
                return 1
            self._suspended = _Suspended(index, ctx.action_context)
            log.info(f"Action={action.name} returned ASYNC. Yielding action chain.")
            return 0
        return 1
