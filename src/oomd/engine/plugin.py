"""The plugin contract: what a detector or action declares and implements.

A plugin class declares each argument once, as an annotated attribute
(``threshold: int = arg(parse_int, required=True)``: parser, default, required,
validator), and implements ``run`` (and optionally ``prerun``). Class creation collects
the declarations into the class's ``args`` tuple of :class:`Arg`; the compiler parses
and validates every arg before the first tick and sets each parsed value as an
attribute named after the arg, so ``run`` reads ``self.threshold``, never a string.

Plugin authors import these names from :mod:`oomd.plugin`, the public API
(docs/writing_a_plugin.md); the built-in plugins do too.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Mapping, Sequence
from enum import Enum

from oomd.cgroup.path import CgroupPattern
from oomd.cgroup.system import SystemContext
from oomd.host import Host
from oomd.log import Kmsg, NullKmsg
from oomd.stats import Stats
from oomd.typeshim import TYPE_CHECKING, Generic, TypeVar, cast

if TYPE_CHECKING:
    from typing import Any, ClassVar

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


class PluginEnv:
    """What plugins get at construction: the daemon's services and settings.

    :attr:`host` is a plugin's only way to the machine outside the cgroup tree and
    ``system``'s readings (the killer, ``/proc``, ``/run``, the system bus,
    systemctl); the daemon builds the real one once, tests a scratch one.
    """

    __slots__ = (
        "cgroup_fs",
        "controllers",
        "dry_run",
        "host",
        "kmsg",
        "notes",
        "own_cgroup",
        "plugin_timeout",
        "protected_cgroups",
        "slow_run_threshold",
        "stats",
        "system",
    )

    def __init__(
        self,
        cgroup_fs: str,
        system: SystemContext | None = None,
        kmsg: Kmsg | None = None,
        stats: Stats | None = None,
        dry_run: bool = False,
        controllers: frozenset[str] | None = None,
        own_cgroup: str | None = None,
        host: Host | None = None,
        slow_run_threshold: float = 1.0,
        plugin_timeout: float = 10.0,
        protected_cgroups: tuple[CgroupPattern, ...] = (),
    ) -> None:
        self.cgroup_fs = cgroup_fs
        self.system = system if system is not None else SystemContext()
        self.kmsg: Kmsg = kmsg if kmsg is not None else NullKmsg()
        self.stats = stats if stats is not None else Stats()
        self.dry_run = dry_run
        self.controllers = controllers
        #: Absolute path of the daemon's own cgroup: it and its ancestors are never
        #: killed.
        self.own_cgroup = own_cgroup
        #: The host's killer, /proc, /run, system bus and systemctl (oomd.host).
        self.host = host if host is not None else Host()
        #: Non-fatal remarks from arg parsers (e.g. ignored trailing characters); the
        #: compiler drains them after each arg and logs them with the arg's location.
        self.notes: list[str] = []
        #: A ``run``/``prerun`` that takes longer than this many seconds is logged and
        #: counted as slow (the daemon uses 1 s, or half the interval if shorter).
        self.slow_run_threshold = slow_run_threshold
        #: A third-party plugin's ``run``/``prerun`` that has not returned after this
        #: many seconds is abandoned by the watchdog (the daemon uses the larger of
        #: 10 s and the interval).
        self.plugin_timeout = plugin_timeout
        #: The config's top-level ``protected_cgroups``: never victims of any kill
        #: plugin (oomd.engine.victims).
        self.protected_cgroups = protected_cgroups

    def replace(self, **changes: Any) -> PluginEnv:
        """A copy with some settings changed (the notes list is the copy's own)."""
        values = {name: getattr(self, name) for name in self.__slots__ if name != "notes"}
        values.update(changes)
        return PluginEnv(**values)

    def __repr__(self) -> str:
        return (
            f"PluginEnv(cgroup_fs={self.cgroup_fs!r}, dry_run={self.dry_run}, host={self.host!r})"
        )


class Arg(Generic[T]):
    """One declared plugin argument.

    ``parse`` turns the config's string (JSON numbers and bools arrive stringified, as
    upstream) into a typed value or raises :class:`ValueError` with a message naming
    what was expected. Plugins declare args with :func:`arg`; the compiler reads them
    from the class's ``args`` tuple. Immutable.
    """

    __slots__ = ("default", "doc", "name", "parse", "parse_list", "required", "validate")

    name: str
    parse: Callable[[str, PluginEnv], T]
    default: T | None
    required: bool
    doc: str
    #: For args that may also be given as a JSON array (e.g. an argv).
    parse_list: Callable[[Sequence[str], PluginEnv], T] | None
    #: Checks a parsed value (not the default); raises ValueError with a message such
    #: as "must be between 0 and 100, not 150" (see :mod:`oomd.engine.args`'s
    #: ``in_range``, ``positive``, ``non_negative``, ``one_of``). The compiler prefixes
    #: file, ruleset, plugin and arg.
    validate: Callable[[T], object] | None

    def __init__(
        self,
        name: str,
        parse: Callable[[str, PluginEnv], T],
        default: T | None = None,
        required: bool = False,
        doc: str = "",
        parse_list: Callable[[Sequence[str], PluginEnv], T] | None = None,
        validate: Callable[[T], object] | None = None,
    ) -> None:
        setattr_ = object.__setattr__
        setattr_(self, "name", name)
        setattr_(self, "parse", parse)
        setattr_(self, "default", default)
        setattr_(self, "required", required)
        setattr_(self, "doc", doc)
        setattr_(self, "parse_list", parse_list)
        setattr_(self, "validate", validate)

    def _key(self) -> tuple[object, ...]:
        return (
            self.name,
            self.parse,
            self.default,
            self.required,
            self.doc,
            self.parse_list,
            self.validate,
        )

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError(f"Arg is immutable (cannot set {name!r})")

    def __eq__(self, other: object) -> bool:
        return self._key() == other._key() if isinstance(other, Arg) else NotImplemented

    def __hash__(self) -> int:
        return hash(self._key())

    def __repr__(self) -> str:
        return (
            f"Arg(name={self.name!r}, parse={self.parse!r}, default={self.default!r}, "
            f"required={self.required!r}, doc={self.doc!r}, parse_list={self.parse_list!r}, "
            f"validate={self.validate!r})"
        )


def arg(
    parse: Callable[[str, PluginEnv], T],
    *,
    default: T | None = None,
    required: bool = False,
    doc: str = "",
    parse_list: Callable[[Sequence[str], PluginEnv], T] | None = None,
    validate: Callable[[T], object] | None = None,
) -> T:
    """Declare a plugin arg as an annotated class attribute, once::

        class Busy(Detector):
            percent: int = arg(parse_int, default=90, validate=in_range(1, 100))

    The arg's name is the attribute's, its type the annotation's. At class creation the
    attribute is removed from the class and the arg appended to ``args`` (after the
    base class's args; re-declaring an inherited arg replaces it in place); the
    compiler then sets each parsed value (or the default) on the instance. The return
    type is the value's, so that type checkers accept the annotation, as with
    :func:`dataclasses.field`.
    """
    declared: Any = _Declared("", parse, default, required, doc, parse_list, validate)
    return cast("T", declared)


# "Any" is quoted: typing's names exist only for the type checker (oomd.typeshim).
class _Declared(Arg["Any"]):
    """What :func:`arg` returns: an arg that its class names once, at creation."""

    __slots__ = ()


def _own_annotations(cls: type) -> Mapping[str, object] | None:
    """The names ``cls`` itself annotates, or None when they cannot be read."""
    try:
        # Only the class's own on Python >= 3.10; evaluated lazily on >= 3.14, where
        # a name imported only for type checkers raises.
        annotations = cls.__annotations__
    except Exception:
        return None
    return annotations if isinstance(annotations, Mapping) else None


def _collect_args(cls: type[Plugin]) -> None:
    """Set ``cls.args`` from the :func:`arg` attributes ``cls`` declares."""
    own = cls.__dict__
    declared = [
        (key, value)
        for key, value in own.items()
        if isinstance(value, _Declared) and not value.name  # not yet named by a class
    ]
    legacy = own.get("args")
    if legacy is not None and not isinstance(legacy, Arg):
        if declared:
            raise TypeError(
                f"{cls.__qualname__} declares args both in an `args` tuple and with arg() "
                f"({', '.join(key for key, _ in declared)}); use arg() only"
            )
        warnings.warn(
            f"{cls.__qualname__}: `args = (Arg(...), ...)` is deprecated and will be "
            "removed in the next release; declare each arg once as an annotated "
            "attribute, e.g. `threshold: int = arg(parse_int, required=True)` "
            "(docs/writing_a_plugin.md)",
            DeprecationWarning,
            stacklevel=3,
        )
        return
    if not declared:
        return
    annotations = _own_annotations(cls)
    merged: dict[str, Arg[Any]] = {a.name: a for a in cls.args}  # inherited, in order
    for key, value in declared:
        if annotations is not None and key not in annotations:
            raise TypeError(
                f"{cls.__qualname__}.{key} = arg(...) needs a type annotation "
                f"(e.g. `{key}: int = arg(...)`)"
            )
        if value.name:
            raise TypeError(f"{cls.__qualname__}.{key}: one arg() per attribute")
        object.__setattr__(value, "name", key)
        merged[key] = value
        delattr(cls, key)
    cls.args = tuple(merged.values())


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

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        _collect_args(cls)

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
