"""C and C++ number semantics (``oomd.cnum``): ``stoll``/``strtod`` prefixes, bounds,
single precision, truncating division and conversion, ``std::min``/``std::max``.

The parsing cases follow reference sections 2.3, 4.4 and 4.9.
"""

from __future__ import annotations

import math

import pytest

from oomd.cnum import (
    INT32_MAX,
    INT32_MIN,
    INT64_MAX,
    INT64_MIN,
    UINT64_MAX,
    c_div,
    c_float_prefix,
    c_int,
    c_int_prefix,
    c_max,
    c_min,
    fdiv,
    to_float32,
    to_int64,
)


def test_bounds_are_the_c_types() -> None:
    assert (INT32_MIN, INT32_MAX) == (-0x80000000, 0x7FFFFFFF)
    assert (INT64_MIN, INT64_MAX) == (-0x8000000000000000, 0x7FFFFFFFFFFFFFFF)
    assert UINT64_MAX == 0xFFFFFFFFFFFFFFFF
    assert (0 - 1) & UINT64_MAX == UINT64_MAX  # uint64_t wraps


# --- C number parsing ------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (b"12", 12),
        (b" 12abc", 12),
        (b"\t\n 7", 7),
        (b"-5", -5),
        (b"+5", 5),
        (b"0012", 12),
        (b"123\n", 123),
        (b"987654321\n", 987654321),
        (b"9223372036854775807", INT64_MAX),
        (b"12 34", 12),
        (b"5.9", 5),
    ],
)
def test_c_int_has_stoll_prefix_semantics(data: bytes, expected: int) -> None:
    """Reference 4.4: single-value files are parsed with ``stoll`` (leading space,
    sign, longest digit prefix, trailing garbage ignored)."""
    assert c_int(data) == expected


@pytest.mark.parametrize("data", [b"", b"abc", b"max", b"-", b"+", b"  ", b"x12", b"- 5"])
def test_c_int_without_digits_is_none(data: bytes) -> None:
    """``stoll`` throws when nothing converts; here that is absent (reference 4.10)."""
    assert c_int(data) is None


def test_c_int_stops_at_underscore_like_stoll() -> None:
    """``stoll("1_000")`` converts only the digit prefix ``1``; Python's ``int()``
    would accept the underscore as a digit separator (reference 4.4: stoll)."""
    assert c_int(b"1_000") == 1


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("42", (42, "")),
        ("  -17rest", (-17, "rest")),
        ("+3%", (3, "%")),
        ("50x%", (50, "x%")),
        ("0 1", (0, " 1")),
    ],
)
def test_c_int_prefix_returns_value_and_rest(text: str, expected: tuple[int, str]) -> None:
    """Reference 4.9: ``stoi`` on ``"50x%"`` reads 50 and leaves the rest."""
    assert c_int_prefix(text) == expected


@pytest.mark.parametrize("text", ["", "abc", "-", " + 1", "%5"])
def test_c_int_prefix_without_digits_is_none(text: str) -> None:
    """No digits: nothing converts (``stoi`` would throw)."""
    assert c_int_prefix(text) is None


@pytest.mark.parametrize(
    ("text", "value", "rest"),
    [
        ("1.5", 1.5, ""),
        ("  1.5abc", 1.5, "abc"),
        ("-2.25x", -2.25, "x"),
        (".5", 0.5, ""),
        ("5.", 5.0, ""),
        ("1e3", 1000.0, ""),
        ("1.5E+2z", 150.0, "z"),
        ("2e-1", 0.2, ""),
        ("1e", 1.0, "e"),
        ("1e+", 1.0, "e+"),
        ("0x10", 16.0, ""),
        ("0x1.8p1", 3.0, ""),
        ("0XAp-1", 5.0, ""),
        ("0x.8", 0.5, ""),
        ("-0x1p4rest", -16.0, "rest"),
        ("0x1p", 1.0, "p"),
        ("0x", 0.0, "x"),
        ("0xg", 0.0, "xg"),
        ("inf", math.inf, ""),
        ("-INF", -math.inf, ""),
        ("infinity!", math.inf, "!"),
        ("infinit", math.inf, "init"),
        ("1e999", math.inf, ""),
    ],
)
def test_c_float_prefix_has_strtod_semantics(text: str, value: float, rest: str) -> None:
    """Reference 2.3/4.9: ``strtod``-style prefix parsing (hex floats, inf,
    exponents only when complete, unparsed rest returned)."""
    assert c_float_prefix(text) == (value, rest)


@pytest.mark.parametrize(("text", "rest"), [("nan", ""), ("-NaN", ""), ("nan(0x1)z", "z")])
def test_c_float_prefix_parses_nan(text: str, rest: str) -> None:
    """``strtod`` accepts ``nan`` and ``nan(chars)``."""
    parsed = c_float_prefix(text)
    assert parsed is not None
    assert math.isnan(parsed[0])
    assert parsed[1] == rest


@pytest.mark.parametrize("text", ["", ".", "e5", "-", "abc", "+-1", " .e1", "in"])
def test_c_float_prefix_without_a_number_is_none(text: str) -> None:
    """No conversion possible: ``strtod`` consumes nothing."""
    assert c_float_prefix(text) is None


def test_c_float_prefix_hex_overflow_is_infinity_not_an_exception() -> None:
    """``strtod("0x1p99999")`` returns HUGE_VAL (inf, ERANGE); the module promises that
    nothing raises for bad input (oomd.cgroup.fs's docstring), like ``1e999`` which gives inf."""
    assert c_float_prefix("0x1p99999") == (math.inf, "")


def test_c_float_prefix_hex_underflow_is_zero() -> None:
    """A tiny hex float underflows to 0 as ``strtod`` does."""
    assert c_float_prefix("0x1p-99999") == (0.0, "")


# --- arithmetic ---------------------------------------------------------------------------


def test_to_float32_rounds_to_single_precision() -> None:
    assert to_float32(0.85) == 0.8500000238418579
    assert to_float32(0.5) == 0.5
    assert to_float32(1e39) == math.inf
    assert to_float32(-1e39) == -math.inf
    assert math.isnan(to_float32(math.nan))


@pytest.mark.parametrize(
    ("dividend", "divisor", "quotient"),
    [(7, 2, 3), (-7, 2, -3), (7, -2, -3), (-7, -2, 3), (0, 5, 0), (-99, 100, 0)],
)
def test_c_div_truncates_toward_zero(dividend: int, divisor: int, quotient: int) -> None:
    """C's ``/`` on integers (Python's ``//`` floors: -7 // 2 == -4)."""
    assert c_div(dividend, divisor) == quotient


def test_c_min_and_c_max_follow_std_on_nan() -> None:
    """``std::min(a, b)`` is ``b < a ? b : a``: a NaN first argument wins, a NaN
    second one loses (Python's ``min`` differs on neither, but the order matters)."""
    assert math.isnan(c_min(math.nan, 1.0))
    assert c_min(1.0, math.nan) == 1.0
    assert math.isnan(c_max(math.nan, 1.0))
    assert c_max(1.0, math.nan) == 1.0
    assert (c_min(2, 3), c_max(2, 3)) == (2, 3)


def test_fdiv_is_ieee_division() -> None:
    assert fdiv(1.0, 4.0) == 0.25
    assert fdiv(1.0, 0.0) == math.inf
    assert fdiv(-1.0, 0.0) == -math.inf
    assert fdiv(1.0, -0.0) == -math.inf
    assert math.isnan(fdiv(0.0, 0.0))
    assert math.isnan(fdiv(math.nan, 0.0))


def test_to_int64_truncates_and_saturates() -> None:
    assert (to_int64(2.9, nan=0), to_int64(-2.9, nan=0)) == (2, -2)
    assert to_int64(2.0**63, nan=0) == INT64_MAX
    assert to_int64(-(2.0**63), nan=0) == INT64_MIN
    assert to_int64(-1e300, nan=0) == INT64_MIN
    assert to_int64(math.inf, nan=0) == INT64_MAX
    assert to_int64(math.nan, nan=7) == 7
