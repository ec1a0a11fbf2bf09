"""C and C++ number semantics, emulated exactly: integer bounds, ``stoll``/``strtod``
prefix parsing, single-precision rounding, truncating division and conversion, and
``std::min``/``std::max`` and IEEE division as upstream's arithmetic behaves.

Everything upstream computes with C types and we must reproduce bit for bit goes
through here, so each rule is written once (imported by the cgroup-file readers, the
arg parsers, the CLI, the JSON reader and the plugins).
"""

from __future__ import annotations

import math
import re
import struct

from oomd.typeshim import TYPE_CHECKING

if TYPE_CHECKING:
    from typing import Any

INT32_MIN = -(2**31)
INT32_MAX = 2**31 - 1
INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1
#: Also the mask that wraps a Python int as ``uint64_t`` arithmetic does (``x & UINT64_MAX``).
UINT64_MAX = 2**64 - 1

#: C ``isspace()`` in the "C" locale.
C_SPACES = " \t\n\v\f\r"


# --- parsing ------------------------------------------------------------------------------

_C_INT = re.compile(rb"\s*([+-]?\d+)")
_C_INT_STR = re.compile(r"[ \t\n\v\f\r]*([+-]?[0-9]+)")


def c_int(data: bytes) -> int | None:
    """``stoll`` semantics: skip leading space, optional sign, longest digit prefix;
    trailing garbage ignored; None when there are no digits or the value is outside
    int64 (stoll's out_of_range: a 4,000-digit memory.current overflowed float
    arithmetic in every kill plugin)."""
    value: int | None = None
    if b"_" not in data:  # int() would accept "1_000"; stoll stops at the "_"
        try:
            value = int(data)
        except ValueError:
            pass
    if value is None:
        m = _C_INT.match(data)
        try:
            value = int(m.group(1)) if m else None
        except ValueError:  # over int()'s 4,300 digits
            return None
    return value if value is None or INT64_MIN <= value <= INT64_MAX else None


def c_int_prefix(text: str) -> tuple[int, str] | None:
    """Parse a C integer prefix of ``text``: (value, unparsed rest) or None."""
    m = _C_INT_STR.match(text)
    if not m:
        return None
    try:
        return int(m.group(1)), text[m.end() :]
    except ValueError:  # over int()'s 4,300 digits: unavailable
        return None


_C_FLOAT_STR = re.compile(
    r"[ \t\n\v\f\r]*([+-]?(?:"
    r"0[xX](?:[0-9a-fA-F]+\.?[0-9a-fA-F]*|\.[0-9a-fA-F]+)(?:[pP][+-]?[0-9]+)?"
    r"|(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?"
    r"|inf(?:inity)?|nan(?:\([0-9A-Za-z_]*\))?))",
    re.IGNORECASE,
)


def c_float_prefix(text: str) -> tuple[float, str] | None:
    """``strtod`` prefix semantics (hex floats, inf, nan): (value, rest) or None."""
    m = _C_FLOAT_STR.match(text)
    if not m:
        return None
    token = m.group(1)
    body = token.lstrip("+-")
    sign = -1.0 if token.startswith("-") else 1.0
    if body[:2].lower() == "0x":
        mantissa, _, exponent = body[2:].lower().partition("p")
        if "." not in mantissa:
            mantissa += "."
        try:
            value = float.fromhex("0x" + mantissa + "p" + (exponent or "0"))
        except OverflowError:
            value = float("inf")
    elif body.lower().startswith("nan"):
        value = float("nan")
    else:
        value = float(body)
    return sign * value, text[m.end() :]


# --- arithmetic ---------------------------------------------------------------------------

_FLOAT32 = struct.Struct("f")


def to_float32(value: float) -> float:
    """``value`` rounded to single precision (C ``float``); too large gives +-inf."""
    try:
        result: float = _FLOAT32.unpack(_FLOAT32.pack(value))[0]
        return result
    except OverflowError:
        return math.copysign(math.inf, value)


def c_div(dividend: int, divisor: int) -> int:
    """C integer division (truncates toward zero)."""
    quotient = abs(dividend) // abs(divisor)
    return quotient if (dividend < 0) == (divisor < 0) else -quotient


def c_min(a: Any, b: Any) -> Any:
    """``std::min``: ``b < a ? b : a`` (NaN handling included)."""
    return b if b < a else a


def c_max(a: Any, b: Any) -> Any:
    """``std::max``: ``a < b ? b : a``."""
    return b if a < b else a


def fdiv(a: float, b: float) -> float:
    """IEEE division (``x/0`` is +-inf or NaN instead of an exception)."""
    if b == 0:
        if a == 0 or math.isnan(a):
            return math.nan
        return math.copysign(math.inf, a) * math.copysign(1.0, b)
    return a / b


def to_int64(value: float, nan: int) -> int:
    """A double converted to int64 (truncation toward zero); out of range saturates
    and NaN gives ``nan`` (both undefined behaviour in C++)."""
    if math.isnan(value):
        return nan
    if value >= 2.0**63:
        return INT64_MAX
    if value < -(2.0**63):
        return INT64_MIN
    return int(value)
