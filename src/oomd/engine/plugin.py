"""The plugin contract: what a detector or action declares and implements.

A plugin class declares its arguments (:class:`Arg`: name, parser, default, required)
and implements ``run`` (and optionally ``prerun``). The compiler parses and validates
every arg before the first tick and sets each parsed value as an attribute named after
the arg, so ``run`` reads ``self.threshold``, never a string.
"""

from __future__ import annotations

import time
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
    sleep: Callable[[float], None] = time.sleep
    controllers: frozenset[str] | None = None
    #: Absolute path of the daemon's own cgroup: it and its ancestors are never killed.
    own_cgroup: str | None = None
    #: Where ``kernel_panic`` writes "c"; None means ``/proc/sysrq-trigger`` (tests point
    #: it, and the plugin module's default, at a scratch file).
    sysrq_trigger: str | None = None
    #: Non-fatal remarks from arg parsers (e.g. ignored trailing characters); the
    #: compiler drains them after each arg and logs them with the arg's location.
    notes: list[str] = field(default_factory=list)


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

    def __repr__(self) -> str:
        return f"<plugin {self.name}>"
