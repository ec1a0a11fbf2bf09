"""Size strings and single-precision args (``oomd.engine.args``).

Upstream: ``Util::parseSize`` / ``Util::parseSizeOrPercent`` (UtilTest.ParseSizeTest,
UtilTest.ParseSizeOrPercentTest), reference section 4.9; ``stof`` for
``fast_fall_ratio``. Accept/reject cases marked "verified" were checked with the Debian
oomd 0.5.0 binary (memory_above's ``threshold`` through ``oomd -c``).
"""

from __future__ import annotations

import pytest

from oomd.cnum import to_float32
from oomd.engine.args import (
    SizeOrPercent,
    parse_float32,
    parse_size,
    parse_size_or_percent,
)
from oomd.engine.plugin import PluginEnv

K, M, G, T = 1 << 10, 1 << 20, 1 << 30, 1 << 40


@pytest.fixture
def env() -> PluginEnv:
    return PluginEnv(cgroup_fs="/nonexistent")


# -- parse_size ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("8192", 8192),  # UtilTest.ParseSizeTest
        ("8K", 8 * K),  # UtilTest.ParseSizeTest
        ("1.5M 32K 512", M * 3 // 2 + 32 * K + 512),  # UtilTest.ParseSizeTest
        ("1.5G", 1610612736),  # Util.h's examples
        ("1G 128M", 1207959552),
        ("4K 2048", 6144),
        ("1T", T),
        ("2t 1g", 2 * T + G),
        ("  1 g  ", G),  # blanks anywhere are removed
        ("-1G", -G),
        ("+1G", G),
        ("1g+2m", G + 2 * M),  # a sign inside a later group is part of its number
        ("1e3k", 1000 * K),
        ("0x10k", 16 * K),
        ("1.5", 1),  # a group without a unit is bytes, truncated
        ("", 0),
    ],
)
def test_parse_size_accepts(text: str, expected: int) -> None:
    assert parse_size(text) == expected


def test_parse_size_truncates_the_running_sum_after_each_group() -> None:
    """Upstream adds each group to an unsigned integer: 0.5 + 0.5 bytes is 0, not 1."""
    assert parse_size("0.5k0.5") == 512
    assert parse_size("0.7k0.7") == 716  # 716.8 -> 716, + 0.7 -> 716


@pytest.mark.parametrize(
    "text",
    [
        "1.5MK",  # UtilTest.ParseSizeTest: a unit without a number
        "??",  # UtilTest.ParseSizeTest
        "+-123M",  # UtilTest.ParseSizeTest: a negative group
        "1gb",
        "k",
        "1k-2",
        "0.5 0.5",  # blanks removed: "0.50.5" is not a number
        "inf",
        "nan",
        "1e400",
        "9000000000000000000000",  # beyond 64 bits
    ],
)
def test_parse_size_rejects(text: str) -> None:
    with pytest.raises(ValueError):
        parse_size(text)


def test_parse_size_lowercases_ascii_only() -> None:
    """C ``tolower``: the Kelvin sign (which Python lowercases to "k") is no unit."""
    with pytest.raises(ValueError):
        parse_size("1\u212a")


# -- parse_size_or_percent ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "total", "expected"),
    [
        ("1%", 100, 1),  # UtilTest.ParseSizeOrPercentTest
        ("5M", 100, 5 * M),  # UtilTest.ParseSizeOrPercentTest
        ("5", 100, 5 * M),  # UtilTest.ParseSizeOrPercentTest: a bare integer is MiB
        ("5K", 100, 5 * K),  # UtilTest.ParseSizeOrPercentTest
        ("1536", 0, 1536 * M),  # MemoryAboveTest.*Compat
        (" 512", 0, 512 * M),  # leading blanks still an integer
        ("-5", 0, -5 * M),  # verified: accepted
        ("0%", 8 * G, 0),
        ("100%", 8 * G, 8 * G),  # verified: accepted
        ("10%", 1001, 100),  # integer division
        ("33%", 8 * G, 8 * G * 33 // 100),
        ("1G 128M", 0, 1207959552),  # verified: accepted
        ("-1G", 0, -G),  # verified: accepted
        ("+1G", 0, G),  # verified: accepted
        ("0x10k", 0, 16 * K),  # verified: accepted
        ("1T 1T 1T", 0, 3 * T),  # verified: accepted
    ],
)
def test_size_or_percent_values(env: PluginEnv, text: str, total: int, expected: int) -> None:
    assert parse_size_or_percent(text, env).resolve(total) == expected
    assert env.notes == []


@pytest.mark.parametrize(
    "text",
    [
        "5%z",  # UtilTest.ParseSizeOrPercentTest
        "150%",  # verified: rejected
        "101%",  # verified: rejected
        "-1%",  # verified: rejected
        "%",  # verified: rejected
        "abc",  # verified: rejected
        ".5G",  # verified: rejected (upstream's stoll throws before parseSize is tried)
        "1gb",  # verified: rejected
        "",  # verified: rejected
        "inf",  # verified: rejected
        "nan",  # verified: rejected
        "k",  # verified: rejected
        "0.5 0.5",  # verified: rejected
        "9999999999999999999",  # verified: rejected (beyond stoll)
        "99999999999999",  # accepted upstream, where the MiB count overflows: rejected
        "99999999999%",  # stoi out of range
    ],
)
def test_size_or_percent_rejects(env: PluginEnv, text: str) -> None:
    with pytest.raises(ValueError, match=r"size|percentage|range"):
        parse_size_or_percent(text, env)


def test_percentage_with_trailing_characters_is_accepted_with_a_note(env: PluginEnv) -> None:
    """Reference 4.9: ``stoi`` of what precedes the "%" (verified: " 50x%" accepted)."""
    assert parse_size_or_percent(" 50x%", env) == SizeOrPercent(" 50x%", percent=50)
    assert env.notes == ["' 50x%' read as 50% (trailing 'x' ignored, as upstream)"]


@pytest.mark.parametrize(
    ("text", "expected", "upstream"),
    [
        ("1.5", M * 3 // 2, 1),
        ("1536.0", 1536 * M, 1536),  # what jsoncpp makes of the JSON number 1536.0
        ("512 ", 512 * M, 512),
        ("1e3", 1000 * M, 1000),
        ("-1.5", -(M * 3 // 2), -1),
    ],
)
def test_bare_number_that_is_not_an_integer_is_mib_with_a_note(
    env: PluginEnv, text: str, expected: int, upstream: int
) -> None:
    """Deliberate difference (docs/compatibility.md): upstream reads these as bytes
    (verified: "1.5" is accepted, as a 1-byte threshold); we read them as MiB like
    every other bare number, and say what upstream would have done."""
    assert parse_size_or_percent(text, env).resolve(0) == expected
    assert len(env.notes) == 1
    assert f"upstream oomd reads it as {upstream} bytes" in env.notes[0]


def test_percent_resolves_against_the_total_given_later(env: PluginEnv) -> None:
    spec = parse_size_or_percent("10%", env)
    assert (spec.resolve(1000), spec.resolve(8 * G)) == (100, 8 * G // 10)


# -- single precision ------------------------------------------------------------------


def test_float32_rounds_like_c_float(env: PluginEnv) -> None:
    assert parse_float32("0.85", env) == to_float32(0.85) == 0.8500000238418579
    assert parse_float32("0", env) == 0.0
    assert parse_float32("-1", env) == -1.0  # verified: accepted for fast_fall_ratio


def test_float32_out_of_range_is_rejected(env: PluginEnv) -> None:
    """``stof`` throws beyond FLT_MAX although ``stod`` would not."""
    with pytest.raises(ValueError, match="out of range"):
        parse_float32("1e39", env)
    with pytest.raises(ValueError, match="not a number"):
        parse_float32("abc", env)  # verified: rejected
    assert to_float32(1e39) == float("inf")
