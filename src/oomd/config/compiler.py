"""ConfigIR -> Engine: look up every plugin, parse and validate every arg, before the
first tick.

Upstream stops at the first problem and names only the plugin; we report every problem
of the config at once, each with file, ruleset, detector group / action, plugin and arg.
The checks and their order per ruleset follow upstream's ``ConfigCompiler.cpp``.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Mapping, Sequence

from oomd import log
from oomd.cgroup.path import parse_pattern_list
from oomd.config import armed
from oomd.config.errors import ConfigError
from oomd.config.ir import ConfigIR, PluginIR, RulesetIR
from oomd.config.suggest import did_you_mean
from oomd.engine.args import parse_int
from oomd.engine.engine import DropInUnit, Engine
from oomd.engine.plugin import ArgError, Plugin, PluginEnv, PluginInitError
from oomd.engine.postkill import PostkillHook
from oomd.engine.prekill import PrekillHook
from oomd.engine.ruleset import DetectorGroup, Ruleset
from oomd.plugins import registry
from oomd.typeshim import Generic, TypeVar

DEFAULT_POST_ACTION_DELAY = 15
DEFAULT_PREKILL_HOOK_TIMEOUT = 5


class Compiled:
    __slots__ = ("engine", "warnings")

    def __init__(self, engine: Engine, warnings: list[str] | None = None) -> None:
        self.engine = engine
        #: Non-fatal findings, each with its location (lenient arg values, plugins
        #: that cannot work on this host, ...).
        self.warnings: list[str] = [] if warnings is None else warnings


P = TypeVar("P", bound=Plugin)


class Registry(Generic[P]):
    """A namespace of plugin names the compiler builds from: its lookup, the base
    class its entries share, where a name comes from (third-party plugins), and the
    message for a name it does not know (``{name}`` is replaced)."""

    __slots__ = ("base", "lookup", "names", "origin", "unknown")

    def __init__(
        self,
        lookup: Callable[[str], type[Plugin] | None],
        base: type[P],
        unknown: str,
        names: Callable[[], Iterable[str]],
        origin: Callable[[str], str | None] = lambda _name: None,
    ) -> None:
        self.lookup = lookup
        self.base = base
        self.unknown = unknown
        #: Every name it knows, for "did you mean" on an unknown one.
        self.names = names
        self.origin = origin

    def suggest(self, name: str) -> str:
        """`` (did you mean "x"?)`` for the closest known name, or ""."""
        return did_you_mean(name, self.names())


#: The rulesets' detectors and actions.
PLUGINS: Registry[Plugin] = Registry(
    registry.get,
    Plugin,
    "Could not locate plugin={name} in plugin registry",
    registry.names,
    registry.origin,
)
#: The config's ``prekill_hooks`` (a separate namespace, as upstream).
PREKILL_HOOKS: Registry[PrekillHook] = Registry(
    registry.get_hook, PrekillHook, 'Unknown PrekillHook "{name}"', lambda: registry.HOOKS
)
#: The config's ``postkill_hooks`` (our addition).
POSTKILL_HOOKS: Registry[PostkillHook] = Registry(
    registry.get_postkill_hook,
    PostkillHook,
    'Unknown PostkillHook "{name}"',
    lambda: registry.POSTKILL_HOOKS,
)


def _describe_error(e: Exception) -> str:
    """An unexpected exception, with where it was raised."""
    import traceback  # only on errors: the daemon does not load it otherwise

    frames = traceback.extract_tb(e.__traceback__)
    at = f" ({os.path.basename(frames[-1].filename)}:{frames[-1].lineno})" if frames else ""
    return f"{type(e).__name__}: {e}{at}"


class _Compiler:
    def __init__(self, ir: ConfigIR, env: PluginEnv) -> None:
        self.ir = ir
        self.problems: list[str] = []
        self.warnings: list[str] = list(ir.warnings)
        self.env = self._protect(env, ir.protected_cgroups)

    def _protect(self, env: PluginEnv, texts: tuple[str, ...]) -> PluginEnv:
        """``env`` with the config's ``protected_cgroups`` added (oomd.engine.victims)."""
        patterns = list(env.protected_cgroups)
        for text in texts:
            try:
                patterns.extend(parse_pattern_list(env.cgroup_fs, text))
            except ValueError as e:
                self.fail('"protected_cgroups"', str(e))
        if len(patterns) == len(env.protected_cgroups):
            return env
        return env.replace(protected_cgroups=tuple(patterns))

    def fail(self, where: str, message: str) -> None:
        self.problems.append(f"{self.ir.source}: {where}: {message}")

    def warn(self, where: str, message: str) -> None:
        self.warnings.append(f"{self.ir.source}: {where}: {message}")

    def drain_notes(self, where: str, prefix: str = "") -> None:
        """Turn the arg parsers' remarks (``env.notes``) into warnings at ``where``."""
        for note in self.env.notes:
            self.warn(where, prefix + note)
        self.env.notes.clear()

    def plugin(self, ir: PluginIR, where: str, kind: Registry[P]) -> P | None:
        if not ir.name:
            self.fail(where, "Plugin is missing name")
            return None
        where = f'{where}: plugin "{ir.name}"'
        try:
            found = kind.lookup(ir.name)
        except registry.PluginLoadError as e:
            for problem in e.problems:
                self.fail(where, problem)
            return None
        if found is None:
            self.fail(where, kind.unknown.format(name=ir.name) + kind.suggest(ir.name))
            return None
        if not issubclass(found, kind.base):
            self.fail(where, f"{found.__qualname__} is not a {kind.base.__name__}")
            return None
        cls: type[P] = found
        ok = True
        for arg in ir.bad_args:
            self.fail(
                where,
                f'arg "{arg}" must be a string, number or bool '
                "(upstream silently drops it and every arg sorting after it)",
            )
            ok = False
        values: dict[str, object] = {}
        for a in cls.args:
            if hasattr(Plugin, a.name):
                self.fail(
                    where,
                    f'the plugin declares an arg "{a.name}", which would replace '
                    f"Plugin.{a.name}; the plugin must rename it",
                )
                ok = False
        if not cls.accepts_any_args:
            known = {a.name: a for a in cls.args}
            for a in cls.args:
                if a.required and a.name not in ir.args and a.name not in ir.list_args:
                    self.fail(where, f'Required arg "{a.name}" missing')
                    ok = False
            given: list[tuple[str, str | tuple[str, ...]]] = [
                *ir.args.items(),
                *ir.list_args.items(),
            ]
            for key, value in given:
                spec = known.get(key)
                if spec is None:
                    self.fail(
                        where, f'Unknown arg "{key}" (known args: {", ".join(sorted(known))})'
                    )
                    ok = False
                    continue
                try:
                    if isinstance(value, str):
                        parsed = spec.parse(value, self.env)
                    elif spec.parse_list is not None:
                        parsed = spec.parse_list(value, self.env)
                    else:
                        raise ValueError("must be a string, number or bool, not an array")
                    if spec.validate is not None:
                        spec.validate(parsed)
                    values[key] = parsed
                except (ValueError, ArithmeticError) as e:
                    self.fail(where, f'arg "{key}": {e}')
                    ok = False
                except Exception as e:
                    # A bug in a (third-party) parser or validator is a config problem
                    # too, never a crash.
                    self.fail(
                        where, f'arg "{key}": {value!r} could not be parsed: {_describe_error(e)}'
                    )
                    ok = False
                self.drain_notes(where, f'arg "{key}": ')
        if not ok:
            return None
        try:
            plugin = cls(self.env, values)
        except ArgError as e:
            self.fail(where, f'arg "{e.arg}": {e.message}' if e.arg else e.message)
            return None
        except PluginInitError as e:
            self.fail(where, f"failed to init: {e}")
            return None
        except Exception as e:
            self.fail(where, f"failed to init: {_describe_error(e)}")
            return None
        finally:
            # Remarks from setup() (e.g. args parsed there, like memory_above's sizes).
            self.drain_notes(where)
        plugin.origin = kind.origin(ir.name)
        self.check_host(plugin, where)
        return plugin

    def check_host(self, plugin: Plugin, where: str) -> None:
        available = self.env.controllers
        if available is None or not plugin.needs_controllers:
            return
        missing = plugin.needs_controllers - available
        if missing:
            names = ", ".join(sorted(missing))
            plugin.unavailable = (
                f"cgroup2 controller(s) {names} not enabled at {self.env.cgroup_fs}"
            )
            self.warn(where, f"cannot work on this host ({plugin.unavailable}); it is disabled")

    def check_role(self, plugin: Plugin | None, role: str, where: str) -> None:
        """A kill plugin in a detector group is an error, a detector in an action
        chain a warning (oomd.config.armed.role_problem)."""
        found = armed.role_problem(plugin, role) if plugin is not None else None
        if found is not None:
            error, message = found
            (self.fail if error else self.warn)(
                f'{where}: plugin "{plugin.name}"' if plugin else where, message
            )

    def delay(self, text: str, default: int, where: str, key: str) -> int:
        """A ruleset's delay in seconds, read with ``stoi`` as upstream reads it."""
        if not text:
            return default
        try:
            value = parse_int(text, self.env)
        except ValueError as e:
            self.fail(where, f"Ruleset {key}: {e}")
            return default
        finally:
            self.drain_notes(where, f"{key} ")
        if value < 0:
            self.fail(where, f"Ruleset {key} must be non-negative")
        return value

    def ruleset(self, ir: RulesetIR, index: int, lenient: bool = False) -> Ruleset | None:
        """Compile one ruleset; ``lenient`` (drop-ins) allows no groups or actions."""
        where = f'ruleset "{ir.name}"' if ir.name else f"ruleset #{index + 1}"
        before = len(self.problems)
        if not ir.name:
            self.fail(where, "Ruleset is missing name")
        silence_engine = silence_plugins = False
        for part in ir.silence_logs.strip(" \t\r\n").split(","):
            part = part.strip(" \t\r\n")
            if not part:
                continue
            if part == "engine":
                silence_engine = True
            elif part == "plugins":
                silence_plugins = True
            else:
                self.fail(where, f"Unrecognized log source={part}")
        if not lenient and (not ir.detector_groups or not ir.actions):
            self.fail(where, _missing_parts(ir))
        post_action_delay = self.delay(
            ir.post_action_delay, DEFAULT_POST_ACTION_DELAY, where, "post_action_delay"
        )
        prekill_timeout = self.delay(
            ir.prekill_hook_timeout, DEFAULT_PREKILL_HOOK_TIMEOUT, where, "prekill_hook_timeout"
        )
        try:
            cgroups = parse_pattern_list(self.env.cgroup_fs, ir.cgroup)
        except ValueError as e:
            self.fail(where, f'"cgroup": {e}')
            cgroups = ()
        if ir.xattr_filter and not cgroups:
            self.warn(
                where, '"xattr_filter" has no effect without a ruleset-level "cgroup" (as upstream)'
            )
        groups: list[DetectorGroup] = []
        for g_index, group in enumerate(ir.detector_groups):
            g_where = (
                f'{where}: detector group "{group.name}"'
                if group.name
                else f"{where}: detector group #{g_index + 1}"
            )
            if not group.name:
                self.fail(g_where, "DetectorGroup is missing name")
            if not group.detectors:
                self.fail(g_where, "DetectorGroup is missing Detectors")
            detectors = []
            for d_index, det in enumerate(group.detectors):
                plugin = self.plugin(det, f"{g_where}: detector #{d_index + 1}", PLUGINS)
                self.check_role(plugin, "detector", f"{g_where}: detector #{d_index + 1}")
                if plugin is not None:
                    detectors.append(plugin)
            groups.append(DetectorGroup(group.name, detectors))
        actions = []
        for a_index, action in enumerate(ir.actions):
            plugin = self.plugin(action, f"{where}: action #{a_index + 1}", PLUGINS)
            self.check_role(plugin, "action", f"{where}: action #{a_index + 1}")
            if plugin is not None:
                actions.append(plugin)
        if len(self.problems) != before:
            return None
        return Ruleset(
            name=ir.name,
            detector_groups=groups,
            actions=actions,
            post_action_delay=post_action_delay,
            prekill_hook_timeout=prekill_timeout,
            silence_engine=silence_engine,
            silence_plugins=silence_plugins,
            cgroups=cgroups,
            xattr_filter=ir.xattr_filter if cgroups else "",
            factory=self._copier(ir) if cgroups else None,
            disable_on_drop_in=ir.dropin.disable_on_drop_in,
        )

    def _copier(self, ir: RulesetIR) -> Callable[[], Ruleset | None]:
        """A factory for the per-cgroup copies of a ruleset: the same IR compiled
        again, so each copy gets fresh plugin instances with the same args."""
        single = ir._replace(cgroup="", xattr_filter="")
        source, env = self.ir.source, self.env

        def build() -> Ruleset | None:
            compiler = _Compiler(ConfigIR(source=source), env)
            ruleset = compiler.ruleset(single, 0)
            if ruleset is None:
                for problem in compiler.problems:
                    log.always(f"Cannot create a per-cgroup copy: {problem}")
            return ruleset

        return build

    def plugins(self, irs: Sequence[PluginIR], kind: Registry[P], label: str) -> list[P]:
        """The top-level list ``irs`` of the config (e.g. its prekill hooks), each
        located as ``<label> #<n>``."""
        built = []
        for index, ir in enumerate(irs):
            plugin = self.plugin(ir, f"{label} #{index + 1}", kind)
            if plugin is not None:
                built.append(plugin)
        return built

    def hooks(self) -> list[PrekillHook]:
        return self.plugins(self.ir.prekill_hooks, PREKILL_HOOKS, "prekill hook")

    def compile(self) -> Compiled:
        rulesets = []
        for index, rs in enumerate(self.ir.rulesets):
            compiled = self.ruleset(rs, index)
            if compiled is not None:
                rulesets.append(compiled)
        hooks = self.hooks()
        postkill = self.plugins(self.ir.postkill_hooks, POSTKILL_HOOKS, "postkill hook")
        if self.problems:
            raise ConfigError(self.problems)
        engine = Engine(rulesets, hooks, self.env.stats)
        engine.postkill_hooks = postkill
        return Compiled(engine, self.warnings)

    def dropin(self, base: ConfigIR) -> DropInUnit:
        """Upstream's compileDropIn: each drop-in ruleset names an existing base
        ruleset and replaces its detector groups and/or actions (where the base's
        ``drop-in`` key allows it); everything else comes from the base."""
        unit = DropInUnit()
        for index, dropin in enumerate(self.ir.rulesets):
            where = f'ruleset "{dropin.name}"' if dropin.name else f"ruleset #{index + 1}"
            target = next((r for r in base.rulesets if r.name == dropin.name), None)
            if target is None:
                self.fail(where, f"Could not locate targeted ruleset={dropin.name}")
                continue
            # The drop-in's own keys are validated, then ignored (as upstream).
            if (
                self.ruleset(dropin._replace(detector_groups=(), actions=()), index, lenient=True)
                is None
            ):
                continue
            if dropin.detector_groups and not target.dropin.detectors:
                self.fail(
                    where,
                    "Error: DetectorGroup drop-in configs disabled" + _allow(base, "detectors"),
                )
                continue
            if dropin.actions and not target.dropin.actions:
                self.fail(where, "Error: Action drop-in configs disabled" + _allow(base, "actions"))
                continue
            merged = target._replace(
                detector_groups=dropin.detector_groups or target.detector_groups,
                actions=dropin.actions or target.actions,
            )
            compiled = self.ruleset(merged, index)
            if compiled is not None:
                unit.rulesets.append(compiled)
        unit.prekill_hooks = self.hooks()
        if self.problems:
            raise ConfigError(self.problems)
        unit.warnings = self.warnings
        return unit


def _missing_parts(ir: RulesetIR) -> str:
    """Upstream's words, saying which part is missing."""
    which = [
        f'no "{key}"'
        for key, value in (("detectors", ir.detector_groups), ("actions", ir.actions))
        if not value
    ]
    return "Ruleset is missing DetectorGroups or missing Actions (" + " and ".join(which) + ")"


def _allow(base: ConfigIR, key: str) -> str:
    return f' (the base ruleset in {base.source} must allow them: add "drop-in": {{"{key}": true}} to it)'


def compile_config(ir: ConfigIR, env: PluginEnv) -> Compiled:
    """Build the engine for ``ir``; raises ConfigError listing every problem."""
    return _Compiler(ir, env).compile()


def compile_dropin(base: ConfigIR, dropin: ConfigIR, env: PluginEnv) -> DropInUnit:
    """Build what a drop-in file adds to the engine compiled from ``base``; raises
    ConfigError naming the drop-in file and every problem."""
    merged = dropin._replace(protected_cgroups=base.protected_cgroups + dropin.protected_cgroups)
    return _Compiler(merged, env).dropin(base)


def build_plugin(
    cls: type[Plugin], args: Mapping[str, str | Sequence[str]], env: PluginEnv
) -> Plugin:
    """One plugin built exactly as a config's ``{"name": ..., "args": args}`` would be
    (args parsed, validated, ``setup`` run, host checked): for plugin tests. Values are
    strings as in a config (a sequence of strings for args that take a list). Raises
    ConfigError listing every problem."""
    compiler = _Compiler(ConfigIR(source="<args>"), env)
    ir = PluginIR(
        name=cls.name or cls.__name__,
        args={k: v for k, v in args.items() if isinstance(v, str)},
        list_args={k: tuple(v) for k, v in args.items() if not isinstance(v, str)},
    )
    plugin = compiler.plugin(
        ir, "build_plugin", Registry(lambda _name: cls, Plugin, "", lambda: ())
    )
    if plugin is None:
        raise ConfigError(compiler.problems)
    for warning in compiler.warnings:
        log.info(f"warning: {warning}")
    return plugin
