"""Typed parsers for plugin arguments, with upstream's acceptance rules.

Upstream parses every arg from a string with ``stoi``/``stod``-style functions: a
numeric prefix is enough (``"80.5"`` is 80, ``"10abc"`` is 10). We accept exactly what
upstream accepts, so existing configs keep working, but record a note when characters
were ignored so the operator sees it in the log.
"""

from __future__ import annotations

import math

from oomd.cgroup.fs import c_float_prefix, c_int_prefix
from oomd.cgroup.path import CgroupPattern, parse_pattern_list
from oomd.engine.plugin import Arg, ArgError, Plugin, PluginEnv

INT32_MIN = -(2**31)
INT32_MAX = 2**31 - 1
INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1


def _int_prefix(value: str, env: PluginEnv, lo: int, hi: int, what: str) -> int:
    parsed = c_int_prefix(value)
    if parsed is None:
        raise ValueError(f"{value!r} is not {what}")
    number, rest = parsed
    if not lo <= number <= hi:
        raise ValueError(f"{value!r} is out of range for {what}")
    if rest:
        env.notes.append(f"{value!r} read as {number} (trailing {rest!r} ignored, as upstream)")
    return number


def parse_int(value: str, env: PluginEnv) -> int:
    """A 32-bit integer (upstream ``stoi``)."""
    return _int_prefix(value, env, INT32_MIN, INT32_MAX, "an integer")


def parse_unsigned_int(value: str, env: PluginEnv) -> int:
    """A non-negative 32-bit integer (upstream ``parseUnsignedInt``)."""
    number = _int_prefix(value, env, INT32_MIN, INT32_MAX, "an integer")
    if number < 0:
        raise ValueError(f"{value!r} must be non-negative")
    return number


def parse_int64(value: str, env: PluginEnv) -> int:
    """A 64-bit integer (upstream ``stoull`` cast to int64: ``"-1"`` is -1)."""
    return _int_prefix(value, env, INT64_MIN, INT64_MAX, "a 64-bit integer")


def parse_milliseconds(value: str, env: PluginEnv) -> int:
    return _int_prefix(value, env, INT64_MIN, INT64_MAX, "a number of milliseconds")


def parse_float(value: str, env: PluginEnv) -> float:
    """A floating-point number (upstream ``stod``: prefix, hex floats, inf, nan)."""
    parsed = c_float_prefix(value)
    if parsed is None:
        raise ValueError(f"{value!r} is not a number")
    number, rest = parsed
    if math.isinf(number) and "inf" not in value.lower():
        raise ValueError(f"{value!r} is out of range")  # stod's ERANGE
    if rest:
        env.notes.append(f"{value!r} read as {number} (trailing {rest!r} ignored, as upstream)")
    return number


_BOOLS = {"true": True, "True": True, "1": True, "false": False, "False": False, "0": False}


def parse_bool(value: str, env: PluginEnv) -> bool:
    """Exactly one of true, True, 1, false, False, 0."""
    try:
        return _BOOLS[value]
    except KeyError:
        raise ValueError(f"{value!r} is not a bool (true, True, 1, false, False or 0)") from None


def parse_resource(value: str, env: PluginEnv) -> str:
    """``memory`` or ``io``."""
    if value not in ("memory", "io"):
        raise ValueError(f"{value!r} is not a resource (memory or io)")
    return value


def parse_string(value: str, env: PluginEnv) -> str:
    return value


def parse_cgroups(value: str, env: PluginEnv) -> tuple[CgroupPattern, ...]:
    """A comma-separated list of cgroup patterns relative to the cgroup filesystem."""
    return parse_pattern_list(env.cgroup_fs, value)


CGROUP_ARG: Arg[tuple[CgroupPattern, ...]] = Arg("cgroup", parse_cgroups, default=())
RULESET_CGROUP_ARG: Arg[tuple[CgroupPattern, ...]] = Arg(
    "ruleset_cgroup", parse_cgroups, default=()
)


def require_cgroups(plugin: Plugin) -> None:
    """Upstream HEAD accepts a plugin with neither ``cgroup`` nor ``ruleset_cgroup`` and
    then logs "Trying to add empty cgroup set" every tick, doing nothing; we reject such
    a config up front."""
    if not getattr(plugin, "cgroup", ()) and not getattr(plugin, "ruleset_cgroup", ()):
        raise ArgError("cgroup", 'Required arg "cgroup" missing (or give "ruleset_cgroup")')
