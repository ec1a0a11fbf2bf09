"""The plugin contract: what a detector or action declares and implements.

A plugin class declares its arguments (:class:`Arg`: name, parser, default, required,
validator) and implements ``run`` (and optionally ``prerun``). The compiler parses and
validates every arg before the first tick and sets each parsed value as an attribute
named after the arg, so ``run`` reads ``self.threshold``, never a string.

Plugin authors import these names from :mod:`oomd.plugin`, the public API
(docs/writing_a_plugin.md); the built-in plugins do too.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import Enum
from typing import TYPE_CHECKING, Any, ClassVar, Generic, TypeVar

from oomd.cgroup.system import SystemContext
from oomd.log import Kmsg, NullKmsg
from oomd.stats import Stats

if TYPE_CHECKING:
    from oomd.cgroup.context import OomdContext

T = TypeVar("T")


class PluginRet(Enum):
    """What ``run`` returns. Detectors: STOP means "not firing". Actions: CONTINUE runs
    the next action, STOP ends the chain (and pauses the ruleset), ASYNC_PAUSED resumes
    this same action on the next tick."""

    CONTINUE = "CONTINUE"
    STOP = "STOP"
    ASYNC_PAUSED = "ASYNC"


class ArgError(Exception):
    """A bad argument value; the compiler adds file, ruleset and plugin to the message."""

    def __init__(self, arg: str, message: str) -> None:
        super().__init__(message)
        self.arg = arg
        self.message = message


class PluginInitError(Exception):
    """A plugin that cannot start (e.g. cannot read /proc/meminfo)."""


@dataclass
class PluginEnv:
    """What plugins get at construction: the daemon's services and settings."""

    cgroup_fs: str
    system: SystemContext = field(default_factory=SystemContext)
    kmsg: Kmsg = field(default_factory=NullKmsg)
    stats: Stats = field(default_factory=Stats)
    dry_run: bool = False
    controllers: frozenset[str] | None = None
    #: Absolute path of the daemon's own cgroup: it and its ancestors are never killed.
    own_cgroup: str | None = None
    #: Where ``kernel_panic`` writes "c"; None means ``/proc/sysrq-trigger`` (tests point
    #: it, and the plugin module's default, at a scratch file).
    sysrq_trigger: str | None = None
    #: Non-fatal remarks from arg parsers (e.g. ignored trailing characters); the
    #: compiler drains them after each arg and logs them with the arg's location.
    notes: list[str] = field(default_factory=list)
    #: A ``run``/``prerun`` that takes longer than this many seconds is logged and
    #: counted as slow (the daemon uses 1 s, or half the interval if that is shorter).
    slow_run_threshold: float = 1.0
    #: A third-party plugin's ``run``/``prerun`` that has not returned after this many
    #: seconds is abandoned by the watchdog (the daemon uses the larger of 10 s and the
    #: interval).
    plugin_timeout: float = 10.0


@dataclass(frozen=True)
class Arg(Generic[T]):
    """One declared plugin argument.

    ``parse`` turns the config's string (JSON numbers and bools arrive stringified, as
    upstream) into a typed value or raises :class:`ValueError` with a message naming
    what was expected.
    """

    name: str
    parse: Callable[[str, PluginEnv], T]
    default: T | None = None
    required: bool = False
    doc: str = ""
    #: For args that may also be given as a JSON array (e.g. an argv).
    parse_list: Callable[[Sequence[str], PluginEnv], T] | None = None
    #: Checks a parsed value (not the default); raises ValueError with a message such
    #: as "must be between 0 and 100, not 150" (see :mod:`oomd.engine.args`'s
    #: ``in_range``, ``positive``, ``non_negative``, ``one_of``). The compiler prefixes
    #: file, ruleset, plugin and arg.
    validate: Callable[[T], object] | None = None


class Plugin:
    """Base of every detector and action."""

    name: ClassVar[str] = ""
    args: ClassVar[tuple[Arg[Any], ...]] = ()
    #: ``continue``/``stop`` accept and ignore any args, as upstream.
    accepts_any_args: ClassVar[bool] = False
    #: cgroup2 controllers the plugin cannot work without (e.g. ``memory``).
    needs_controllers: ClassVar[frozenset[str]] = frozenset()
    #: Set by the compiler when the host cannot support the plugin (e.g. no memory
    #: controller on cgroup2); the engine then treats it as not firing / skipped.
    unavailable: str | None = None
    #: Where the plugin's class came from, set by the compiler: None for a built-in,
    #: else e.g. ``"plugin dir: /etc/oomd/plugins/x.py"``. Third-party plugins run
    #: under the watchdog (docs/writing_a_plugin.md, "Isolation").
    origin: str | None = None

    def __init__(self, env: PluginEnv, values: Mapping[str, Any]) -> None:
        self.env = env
        self.provided: frozenset[str] = frozenset(values)
        for arg in self.args:
            setattr(self, arg.name, values.get(arg.name, arg.default))
        self.setup()

    def setup(self) -> None:
        """Cross-argument validation and start-up reads; raise ArgError or
        PluginInitError."""

    def prerun(self, ctx: OomdContext) -> None:
        """Called every tick before any ``run``, whether or not anything fires."""

    def run(self, ctx: OomdContext) -> PluginRet:
        raise NotImplementedError

    def explain(self, ctx: OomdContext) -> dict[str, Any] | None:
        """What ``run`` would see and decide now, for ``oomd status``/``explain``,
        with no side effect at all (oomd.engine.explain). None: cannot say."""
        return None

    def __repr__(self) -> str:
        return f"<plugin {self.name}>"


class Detector(Plugin):
    """A plugin meant for detector groups. Implement :meth:`detect` (True: firing) or,
    as upstream's detectors do, ``run`` (CONTINUE: firing, STOP: not firing).

    The base class marks intent only: as upstream, any plugin may be configured as a
    detector or as an action, and what a result means follows where it is configured.
    """

    def detect(self, ctx: OomdContext) -> bool:
        """True when the condition holds this tick."""
        raise NotImplementedError

    def run(self, ctx: OomdContext) -> PluginRet:
        return PluginRet.CONTINUE if self.detect(ctx) else PluginRet.STOP


class Action(Plugin):
    """A plugin meant for action chains: ``run`` returns CONTINUE (run the next
    action), STOP (end the chain; the ruleset pauses) or ASYNC_PAUSED (call me again
    next tick). Kill plugins derive from ``KillPlugin``, an Action."""
