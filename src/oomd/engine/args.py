"""Typed parsers for plugin arguments, with upstream's acceptance rules.

Upstream parses every arg from a string with ``stoi``/``stod``-style functions: a
numeric prefix is enough (``"80.5"`` is 80, ``"10abc"`` is 10). We accept exactly what
upstream accepts, so existing configs keep working, but record a note when characters
were ignored so the operator sees it in the log.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Hashable

from oomd.cgroup.path import CgroupPattern, parse_pattern_list
from oomd.cnum import (
    C_SPACES,
    INT32_MAX,
    INT32_MIN,
    INT64_MAX,
    INT64_MIN,
    c_div,
    c_float_prefix,
    c_int_prefix,
    to_float32,
)
from oomd.engine.plugin import Arg, ArgError, Plugin, PluginEnv


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


def parse_float32(value: str, env: PluginEnv) -> float:
    """A single-precision number (upstream ``stof``: like ``stod``, and out of range
    beyond +-3.4e38)."""
    number = parse_float(value, env)
    rounded = to_float32(number)
    if math.isinf(rounded) and not math.isinf(number):
        raise ValueError(f"{value!r} is out of range for a float")
    return rounded


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


# -- sizes ---------------------------------------------------------------------------

_C_SPACE = re.compile(f"[{C_SPACES}]")
_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")
_UNITS = {"k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}
_UNIT_CHARS = re.compile("[kmgt]")
#: A number with no unit that upstream reads as bytes although it reads an integer as
#: MiB: a fraction or an exponent (``"1.5"``, JSON's ``1536.0``) or trailing blanks.
_BARE_NUMBER = re.compile(r"[+-]?[0-9]+(?:\.[0-9]*)?(?:[eE][+-]?[0-9]+)?")


def parse_size(text: str) -> int:
    """Upstream ``Util::parseSize``: whitespace removed, case ignored, an optional
    sign, then ``<number><unit>`` groups summed, the unit one of k, m, g, t (powers of
    1024) and optional on the last group (bytes): ``"1.5G"``, ``"1G 128M"``,
    ``"4K 2048"``. The running sum is truncated to whole bytes after each group, as
    upstream. Raises ValueError."""
    s = _C_SPACE.sub("", text).translate(_ASCII_LOWER)
    negative = s[:1] == "-"
    pos = 1 if s[:1] in ("+", "-") else 0
    size = 0
    while pos < len(s):
        unit = _UNIT_CHARS.search(s, pos)
        end = len(s) if unit is None else unit.start()
        if end == pos:
            raise ValueError(f"{text!r}: a unit without a number")
        number = s[pos:end]
        parsed = c_float_prefix(number)
        if parsed is None or parsed[1]:
            raise ValueError(f"{text!r}: {number!r} is not a number")
        value = parsed[0]
        if not math.isfinite(value) or value < 0:
            raise ValueError(f"{text!r}: {number!r} is not a non-negative finite number")
        if unit is not None:
            value *= _UNITS[unit.group()]
        total = float(size) + value
        if total >= 2**63:
            raise ValueError(f"{text!r} is out of range")
        size = int(total)
        pos = end + 1
    return -size if negative else size


class SizeOrPercent:
    """A parsed size string: a number of bytes, or a percentage of a total that is
    only known when the plugin starts (MemTotal, SwapTotal). Immutable."""

    __slots__ = ("percent", "size", "text")

    text: str
    size: int | None
    percent: int | None

    def __init__(self, text: str, size: int | None = None, percent: int | None = None) -> None:
        object.__setattr__(self, "text", text)
        object.__setattr__(self, "size", size)
        object.__setattr__(self, "percent", percent)

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError(f"SizeOrPercent is immutable (cannot set {name!r})")

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, SizeOrPercent):
            return NotImplemented
        return (self.text, self.size, self.percent) == (other.text, other.size, other.percent)

    def __hash__(self) -> int:
        return hash((self.text, self.size, self.percent))

    def __repr__(self) -> str:
        return f"SizeOrPercent(text={self.text!r}, size={self.size!r}, percent={self.percent!r})"

    def resolve(self, total: int) -> int:
        """The threshold in bytes: the size, or ``total * percent / 100`` (integer
        division, as upstream)."""
        if self.percent is None:
            assert self.size is not None
            return self.size
        return c_div(total * self.percent, 100)


def parse_size_or_percent(value: str, env: PluginEnv) -> SizeOrPercent:
    """Upstream ``Util::parseSizeOrPercent``, tried in this order:

    1. ``N%`` (``stoi`` of what precedes the ``%``, 0 <= N <= 100): N percent of the
       total the plugin gives;
    2. an integer (``stoll`` consuming the whole string): that many MiB
       (``"1536"``, ``" 512"``, ``"-5"``);
    3. :func:`parse_size`, but only when the string starts like an integer
       (upstream's ``stoll`` throws first otherwise: ``".5G"`` is invalid).

    Deliberate differences: a number without a unit that is not an integer
    (``"1.5"``, ``"1536.0"``, ``"512 "``) is MiB like an integer is, where upstream
    silently reads it as bytes (``"1.5"`` = 1 byte); and a MiB count that overflows
    64 bits is an error (upstream wraps). A note says so in both cases.
    """
    invalid = (
        f"{value!r} is not a size (like 512M, 1.5G or 1G 128M; a bare number is MiB) "
        "nor a percentage N% with 0 <= N <= 100"
    )
    if value.endswith("%"):
        parsed = c_int_prefix(value[:-1])
        if parsed is None or not INT32_MIN <= parsed[0] <= INT32_MAX:
            raise ValueError(invalid)
        percent, rest = parsed
        if not 0 <= percent <= 100:
            raise ValueError(f"{value!r}: a percentage must be between 0 and 100")
        if rest:
            env.notes.append(
                f"{value!r} read as {percent}% (trailing {rest!r} ignored, as upstream)"
            )
        return SizeOrPercent(value, percent=percent)
    prefix = c_int_prefix(value)
    if prefix is None:
        raise ValueError(invalid)
    number, rest = prefix
    if not INT64_MIN <= number <= INT64_MAX:
        raise ValueError(f"{value!r} is out of range")
    if not rest:
        size = number << 20
        if not INT64_MIN <= size <= INT64_MAX:
            raise ValueError(f"{value!r} MiB is out of range")
        return SizeOrPercent(value, size=size)
    try:
        upstream = parse_size(value)
    except ValueError:
        raise ValueError(invalid) from None
    bare = value.strip(C_SPACES)
    if _BARE_NUMBER.fullmatch(bare):
        size = int(float(bare) * (1 << 20))
        if not INT64_MIN <= size <= INT64_MAX:
            raise ValueError(f"{value!r} MiB is out of range")
        env.notes.append(
            f"{value!r} read as {bare} MiB = {size} bytes, like an integer "
            f"(upstream oomd reads it as {upstream} bytes)"
        )
        return SizeOrPercent(value, size=size)
    return SizeOrPercent(value, size=upstream)


# -- validators (Arg.validate) ----------------------------------------------------------


def _show(value: object) -> str:
    return repr(value) if isinstance(value, str) else str(value)


def in_range(lo: float | None = None, hi: float | None = None) -> Callable[[float], None]:
    """A validator: ``lo <= value <= hi`` (either bound may be None)."""
    if lo is not None and hi is not None:
        expected = f"between {_show(lo)} and {_show(hi)}"
    elif lo is not None:
        expected = f"at least {_show(lo)}"
    elif hi is not None:
        expected = f"at most {_show(hi)}"
    else:
        raise TypeError("in_range() needs lo or hi")

    def check(value: float) -> None:
        if math.isnan(value) or (lo is not None and value < lo) or (hi is not None and value > hi):
            raise ValueError(f"must be {expected}, not {_show(value)}")

    return check


def positive(value: float) -> None:
    """A validator: ``value > 0``."""
    if not value > 0:
        raise ValueError(f"must be positive, not {_show(value)}")


def non_negative(value: float) -> None:
    """A validator: ``value >= 0``."""
    if not value >= 0:
        raise ValueError(f"must be non-negative, not {_show(value)}")


def one_of(*choices: Hashable) -> Callable[[Hashable], None]:
    """A validator: the value is one of ``choices``."""
    allowed = ", ".join(_show(c) for c in choices)

    def check(value: Hashable) -> None:
        if value not in choices:
            raise ValueError(f"must be one of {allowed}, not {_show(value)}")

    return check


def parse_cgroups(value: str, env: PluginEnv) -> tuple[CgroupPattern, ...]:
    """A comma-separated list of cgroup patterns relative to the cgroup filesystem."""
    return parse_pattern_list(env.cgroup_fs, value)


#: The ``cgroup`` and ``ruleset_cgroup`` args, for plugins that still list ``args``
#: (deprecated); declare ``cgroup: tuple[CgroupPattern, ...] = arg(parse_cgroups,
#: default=())`` instead.
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
