"""The public plugin API: everything a plugin needs, and the only module it imports.

A detector::

    from oomd.plugin import (
        CgroupPattern, Detector, OomdContext, arg, in_range, parse_cgroups, parse_int,
    )

    class Busy(Detector):
        name = "busy"
        cgroup: tuple[CgroupPattern, ...] = arg(parse_cgroups, default=())
        percent: int = arg(parse_int, default=90, validate=in_range(1, 100))

        def detect(self, ctx: OomdContext) -> bool:
            ...

A kill plugin supplies only its ranking (``rank``) and its "Picked" log line
(``pick_reason``); the kill core of :class:`KillPlugin` does the rest, exactly as for
the built-in kill plugins.

Register a plugin with the ``oomd.plugins`` entry-point group of an installed package
or put its file in a ``--plugin-dir``; test it with :func:`oomd.testing.build_plugin`.
docs/writing_a_plugin.md is the tutorial; it
also says what happens when a plugin raises or is slow ("Isolation"). The built-in
plugins take the plugin contract (base classes, args, contexts) from this module too;
a few of them also use internal helpers that are not part of the API (raw cgroup-file
parsers, PSI triggers, prekill hooks' engine side). Names not listed in ``__all__`` are
not part of the API.
"""

from __future__ import annotations

from oomd import log
from oomd.cgroup.context import (
    ActionContext,
    CgroupContext,
    KillPreference,
    OomdContext,
    fmt_mb,
)
from oomd.cgroup.fs import ZERO_PRESSURE, Pressure
from oomd.cgroup.path import CgroupPath, CgroupPattern
from oomd.cgroup.system import SystemContext
from oomd.cnum import to_float32
from oomd.engine.args import (
    CGROUP_ARG,
    RULESET_CGROUP_ARG,
    SizeOrPercent,
    in_range,
    non_negative,
    one_of,
    parse_bool,
    parse_cgroups,
    parse_float,
    parse_float32,
    parse_int,
    parse_int64,
    parse_milliseconds,
    parse_resource,
    parse_size,
    parse_size_or_percent,
    parse_string,
    parse_unsigned_int,
    positive,
    require_cgroups,
)
from oomd.engine.explain import detector_reading
from oomd.engine.kill_base import KILL_ARGS, KillPlugin, fmt_float, sort_with_preferences
from oomd.engine.plugin import (
    Action,
    Arg,
    ArgError,
    Detector,
    Plugin,
    PluginEnv,
    PluginInitError,
    PluginRet,
    arg,
)
from oomd.engine.timer import ThresholdTimer
from oomd.host import Host, KillerLike
from oomd.kill import KillReport
from oomd.log import Kmsg, NullKmsg

__all__ = [
    "CGROUP_ARG",
    "KILL_ARGS",
    "RULESET_CGROUP_ARG",
    "ZERO_PRESSURE",
    "Action",
    "ActionContext",
    "Arg",
    "ArgError",
    "CgroupContext",
    "CgroupPath",
    "CgroupPattern",
    "Detector",
    "Host",
    "KillPlugin",
    "KillPreference",
    "KillReport",
    "KillerLike",
    "Kmsg",
    "NullKmsg",
    "OomdContext",
    "Plugin",
    "PluginEnv",
    "PluginInitError",
    "PluginRet",
    "Pressure",
    "SizeOrPercent",
    "SystemContext",
    "ThresholdTimer",
    "arg",
    "detector_reading",
    "fmt_float",
    "fmt_mb",
    "in_range",
    "log",
    "non_negative",
    "one_of",
    "parse_bool",
    "parse_cgroups",
    "parse_float",
    "parse_float32",
    "parse_int",
    "parse_int64",
    "parse_milliseconds",
    "parse_resource",
    "parse_size",
    "parse_size_or_percent",
    "parse_string",
    "parse_unsigned_int",
    "positive",
    "require_cgroups",
    "sort_with_preferences",
    "to_float32",
]
