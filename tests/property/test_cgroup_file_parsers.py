"""Every cgroup-file parser of ``oomd.cgroup.fs`` on arbitrary bytes: a value or
"unavailable" (None, or an empty result), never an exception. A cgroup's owner writes
what its ``user.*`` xattrs hold, and a fake or broken kernel file may hold anything;
an exception there fails every plugin that reads the file, every tick (issue 12)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from oomd import cnum
from oomd.cgroup import fs

HUGE = b"9" * 5000

#: Text close to what the kernel writes, so the search reaches deep into each parser.
_TOKENS = [
    b"some",
    b"full",
    b"aggr",
    b"avg10=",
    b"avg60=",
    b"avg300=",
    b"total=",
    b"max",
    b"populated ",
    b"rbytes=",
    b"wbytes=",
    b"rios=",
    b"wios=",
    b"dbytes=",
    b"dios=",
    b"8:0",
    b"MemTotal:",
    b" kB",
    b"anon ",
    b"Filename",
    b"1",
    b"0",
    b"-",
    b"+",
    b".",
    b"e",
    b"_",
    b" ",
    b"\n",
    b"\t",
    b"\x00",
    b"\xff",
    b"0x1p",
    b"nan",
    b"inf",
    HUGE,
]
cgroup_bytes = st.one_of(
    st.binary(max_size=200),
    st.lists(st.sampled_from(_TOKENS) | st.binary(max_size=8), max_size=30).map(b"".join),
)

BYTES_PARSERS: dict[str, Callable[[bytes], Any]] = {
    "c_int": cnum.c_int,
    "parse_single_int": fs.parse_single_int,
    "parse_limit": fs.parse_limit,
    "parse_limit_tmp": fs.parse_limit_tmp,
    "parse_pressure some": lambda d: fs.parse_pressure(d, False),
    "parse_pressure full": lambda d: fs.parse_pressure(d, True),
    "parse_pressure_general some": lambda d: fs.parse_pressure_general(d, False),
    "parse_pressure_general full": lambda d: fs.parse_pressure_general(d, True),
    "KeyedValues.get": lambda d: fs.KeyedValues(d).get("anon"),
    "KeyedValues.as_dict": lambda d: fs.KeyedValues(d).as_dict(),
    "KeyedValues.lines": lambda d: fs.KeyedValues(d).lines(),
    "parse_populated": fs.parse_populated,
    "parse_oom_group": fs.parse_oom_group,
    "parse_pids": fs.parse_pids,
    "parse_io_stat": fs.parse_io_stat,
    "parse_meminfo": fs.parse_meminfo,
    "parse_swaps": fs.parse_swaps,
}
TEXT_PARSERS: dict[str, Callable[[str], Any]] = {
    "c_int_prefix": cnum.c_int_prefix,
    "c_float_prefix": cnum.c_float_prefix,
}


def test_every_parser_of_the_module_is_covered() -> None:
    """A parser added to oomd.cgroup.fs (or a C-number parser to oomd.cnum) must be
    added here too."""
    names = {n for n in vars(fs) if n.startswith("parse_")}
    names |= {n for n in vars(cnum) if n.startswith("c_") and n.endswith(("int", "prefix"))}
    covered = {k.split()[0].split(".")[0] for k in (*BYTES_PARSERS, *TEXT_PARSERS)}
    assert names <= covered, names - covered


@pytest.mark.parametrize("name", sorted(BYTES_PARSERS))
@given(data=cgroup_bytes)
@example(data=HUGE)
@example(data=b"  -" + HUGE + b"x\n")
@example(data=b"some avg10=0.00 avg60=0.00 avg300=0.00 total=" + HUGE + b"\nfull x\n")
@example(data=b"MemTotal: " + HUGE + b" kB\n")
def test_a_bytes_parser_gives_a_value_or_unavailable(name: str, data: bytes) -> None:
    BYTES_PARSERS[name](data)


@pytest.mark.parametrize("name", sorted(TEXT_PARSERS))
@given(text=st.text(max_size=100) | cgroup_bytes.map(lambda b: b.decode("latin-1")))
@example(text=HUGE.decode())
@example(text=" +" + HUGE.decode() + "%")
def test_a_text_parser_gives_a_value_or_unavailable(name: str, text: str) -> None:
    TEXT_PARSERS[name](text)


def test_a_huge_integer_reads_as_unavailable() -> None:
    assert cnum.c_int(HUGE) is None
    assert fs.parse_single_int(HUGE + b"\n") is None
    assert fs.parse_limit(HUGE + b"\n") is None
    assert cnum.c_int_prefix(HUGE.decode()) is None
