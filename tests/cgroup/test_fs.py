"""Parsers of kernel cgroup2 and /proc text files (``oomd.cgroup.fs``).

Upstream reference: ``src/oomd/util/FsTest.cpp`` and the file formats of
``src/oomd/fixtures/FsFixture.cpp``; behaviour from reference sections 4.4, 4.7, 4.8.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from oomd.cgroup import fs
from oomd.cgroup.fs import IoStat, KeyedValues, Pressure
from oomd.cnum import INT64_MAX

# The /proc/meminfo of upstream's FsFixture (49 lines, HugePages_* without a unit).
MEMINFO = b"""MemTotal:       58616708 kB
MemFree:         2955848 kB
MemAvailable:   49878948 kB
Buffers:         4970160 kB
Cached:         35172508 kB
SwapCached:            0 kB
Active:         27822776 kB
Inactive:       19032824 kB
Active(anon):    4024064 kB
Inactive(anon):  2822876 kB
Active(file):   23798712 kB
Inactive(file): 16209948 kB
Unevictable:       11684 kB
Mlocked:           11668 kB
SwapTotal:       2097148 kB
SwapFree:        1097041 kB
Dirty:             24576 kB
Writeback:             0 kB
AnonPages:       6725380 kB
Mapped:           657992 kB
Shmem:            130124 kB
Slab:            8238080 kB
SReclaimable:    7334616 kB
SUnreclaim:       903464 kB
KernelStack:       45984 kB
PageTables:        75756 kB
NFS_Unstable:          0 kB
Bounce:                0 kB
WritebackTmp:          0 kB
CommitLimit:    31405500 kB
Committed_AS:   21265672 kB
VmallocTotal:   34359738367 kB
VmallocUsed:           0 kB
VmallocChunk:          0 kB
HardwareCorrupted:     0 kB
AnonHugePages:     71680 kB
ShmemHugePages:        0 kB
ShmemPmdMapped:        0 kB
CmaTotal:              0 kB
CmaFree:               0 kB
HugePages_Total:       0
HugePages_Free:        0
HugePages_Rsvd:        0
HugePages_Surp:        0
Hugepagesize:       2048 kB
Hugetlb:               0 kB
DirectMap4k:     4544368 kB
DirectMap2M:    53127168 kB
DirectMap1G:     4194304 kB
"""

# memory.stat of upstream's FsFixture (29 keys).
MEMORY_STAT = b"""anon 1294168064
file 3870687232
kernel_stack 7225344
slab 296456192
sock 1228800
shmem 135168
file_mapped 199778304
file_dirty 405504
file_writeback 811008
inactive_anon 296529920
active_anon 997982208
inactive_file 1284907008
active_file 2586988544
unevictable 28672
slab_reclaimable 262471680
slab_unreclaimable 33984512
pgfault 734452455
pgmajfault 4627590
pgrefill 243154
pgscan 787288
pgsteal 770913
pgactivate 13992
pgdeactivate 233504
pglazyfree 0
pglazyfreed 0
workingset_refault 510510
workingset_activate 25608
workingset_restore 3927
workingset_nodereclaim 0
"""

UPSTREAM_PSI = (
    b"some avg10=1.11 avg60=2.22 avg300=3.33 total=134829384400\n"
    b"full avg10=4.44 avg60=5.55 avg300=6.66 total=128544748770\n"
)
AGGR_PSI = b"aggr 128544748770\nsome 1.11 2.22 3.33\nfull 4.44 5.55 6.66\n"
AGGR_PSI_DEBUG = AGGR_PSI + b"0 0 0\n0 0 0\n0 0 0\n0 0 0\n"

IO_STAT = (
    b"1:10 rbytes=1111111 wbytes=2222222 rios=33 wios=44 dbytes=5555555555 dios=6\n"
    b"1:11 rbytes=2222222 wbytes=3333333 rios=44 wios=55 dbytes=6666666666 dios=7\n"
)


# --- read_bytes ------------------------------------------------------------------


def test_read_bytes_missing_file_is_none(tmp_path: Path) -> None:
    """FsTest.ReadFileBad: a missing file is an error (absent), never an exception."""
    assert fs.read_bytes(str(tmp_path / "ksldjfksdlfdsjf")) is None


def test_read_bytes_directory_is_none(tmp_path: Path) -> None:
    """Reference 4.10: an unreadable path yields absent rather than raising."""
    assert fs.read_bytes(str(tmp_path)) is None


def test_read_bytes_returns_content_verbatim(tmp_path: Path) -> None:
    """FsTest.ReadFile: lines including an empty one come back unchanged."""
    f = tmp_path / "stuff"
    f.write_bytes(b"hello world\nmy good man\n\n1\n")
    assert fs.read_bytes(str(f)) == b"hello world\nmy good man\n\n1\n"


def test_read_bytes_empty_file_is_empty_bytes(tmp_path: Path) -> None:
    """An empty file is present but empty (not absent)."""
    f = tmp_path / "empty"
    f.write_bytes(b"")
    assert fs.read_bytes(str(f)) == b""


@pytest.mark.parametrize("size", [65535, 65536, 65537, 3 * 65536, 200_003])
def test_read_bytes_reads_files_larger_than_one_chunk_whole(tmp_path: Path, size: int) -> None:
    """Reference 4.4 (whole-file reads): files around and over 64 KiB are read whole
    (a 10,000-line memory.stat or cgroup.procs must not be truncated)."""
    data = bytes(i % 251 for i in range(size))
    f = tmp_path / "big"
    f.write_bytes(data)
    assert fs.read_bytes(str(f)) == data


# --- single values and limits ----------------------------------------------------


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (b"987654321\n", 987654321),
        (b"321321\n", 321321),
        (b"5\n6\n", 5),
        (b"0\n", 0),
        (b"  8 junk\n", 8),
    ],
)
def test_parse_single_int_reads_first_line(data: bytes, expected: int) -> None:
    """FsTest.ReadMemoryCurrent / ReadSwapCurrent: first line, ``stoll``."""
    assert fs.parse_single_int(data) == expected


@pytest.mark.parametrize("data", [b"", b"\n5\n", b"max\n"])
def test_parse_single_int_non_numeric_first_line_is_none(data: bytes) -> None:
    """Reference 4.10: malformed single-value files are absent, not a crash."""
    assert fs.parse_single_int(data) is None


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (b"333333\n", 333333),
        (b"666\n", 666),
        (b"1000", 1000),
        (b"654\n", 654),
        (b"12345\n", 12345),
        (b"max\n", INT64_MAX),
        (b"max", INT64_MAX),
        (b"0\n", 0),
    ],
)
def test_parse_limit_values_and_max(data: bytes, expected: int) -> None:
    """FsTest.ReadMemoryLow/Min/High/Max/ReadSwapMax: one line, ``max`` = INT64_MAX."""
    assert fs.parse_limit(data) == expected


@pytest.mark.parametrize("data", [b"", b"\n\n", b"1\n2\n", b"max\nmax\n", b"100\n\n", b"abc\n"])
def test_parse_limit_requires_exactly_one_line(data: bytes) -> None:
    """Reference 4.4: a limit file must have exactly one line, else absent."""
    assert fs.parse_limit(data) is None


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (b"2000 20000\n", 2000),
        (b"max 0\n", INT64_MAX),
        (b"54321 400000", 54321),
    ],
)
def test_parse_limit_tmp_value_and_duration(data: bytes, expected: int) -> None:
    """FsTest.ReadMemoryHighTmp / CgroupContextTest.DataLifeCycle (``max 0``)."""
    assert fs.parse_limit_tmp(data) == expected


@pytest.mark.parametrize(
    "data", [b"", b"2000\n", b"max\n", b"1 2 3\n", b"2000 20000\n1 1\n", b"abc 5\n"]
)
def test_parse_limit_tmp_malformed_is_none(data: bytes) -> None:
    """Reference 4.4: exactly one line of two tokens, else absent."""
    assert fs.parse_limit_tmp(data) is None


# --- PSI -------------------------------------------------------------------------


def test_parse_pressure_upstream_format_full_line() -> None:
    """FsTest.ReadMemoryPressure (v4.16+ format): FULL uses line 1 with its total."""
    p = fs.parse_pressure(UPSTREAM_PSI, full=True)
    assert p is not None
    assert p.avg10 == pytest.approx(4.44)
    assert p.avg60 == pytest.approx(5.55)
    assert p.avg300 == pytest.approx(6.66)
    assert p.total == 128544748770


def test_parse_pressure_upstream_format_some_line() -> None:
    """FsTest.ReadMemoryPressureSome: SOME uses line 0."""
    p = fs.parse_pressure(UPSTREAM_PSI, full=False)
    assert p is not None
    assert (p.avg10, p.avg60, p.avg300) == pytest.approx((1.11, 2.22, 3.33))
    assert p.total == 134829384400


def test_parse_pressure_io_file() -> None:
    """FsTest.ReadIoPressure / ReadIoPressureSome: same parser for io.pressure."""
    data = (
        b"some avg10=1.12 avg60=2.23 avg300=3.34 total=134829384401\n"
        b"full avg10=4.45 avg60=5.56 avg300=6.67 total=128544748771\n"
    )
    full = fs.parse_pressure(data, full=True)
    some = fs.parse_pressure(data, full=False)
    assert full is not None and some is not None
    assert (full.avg10, full.avg60, full.avg300) == pytest.approx((4.45, 5.56, 6.67))
    assert (some.avg10, some.avg60, some.avg300) == pytest.approx((1.12, 2.23, 3.34))


@pytest.mark.parametrize("data", [AGGR_PSI, AGGR_PSI_DEBUG])
def test_parse_pressure_experimental_aggr_format(data: bytes) -> None:
    """FsTest.ReadMemoryPressure/Some (old experimental format, also with debug
    lines): line 1 is some, line 2 is full, no total."""
    full = fs.parse_pressure(data, full=True)
    some = fs.parse_pressure(data, full=False)
    assert full is not None and some is not None
    assert (full.avg10, full.avg60, full.avg300) == pytest.approx((4.44, 5.55, 6.66))
    assert (some.avg10, some.avg60, some.avg300) == pytest.approx((1.11, 2.22, 3.33))
    assert full.total is None
    assert some.total is None


def test_parse_pressure_only_some_line_is_invalid() -> None:
    """Reference 4.4: a file with only a ``some`` line (old cpu.pressure) is invalid,
    for both the some and the full reading."""
    data = b"some avg10=1.00 avg60=2.00 avg300=3.00 total=4\n"
    assert fs.parse_pressure(data, full=True) is None
    assert fs.parse_pressure(data, full=False) is None


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"\n",
        b"garbage\nmore garbage\n",
        # full line where a some line is expected and vice versa
        b"some avg10=1 avg60=2 avg300=3 total=4\nsome avg10=1 avg60=2 avg300=3 total=4\n",
        # wrong key names / order
        b"some avg10=1 avg60=2 avg300=3 total=4\nfull avg11=1 avg60=2 avg300=3 total=4\n",
        b"some avg10=1 avg60=2 avg300=3 total=4\nfull avg10=1 avg300=2 avg60=3 total=4\n",
        b"some avg10=1 avg60=2 avg300=3 total=4\nfull avg10=1 avg60=2 avg300=3 totl=4\n",
        # missing '=' / missing token
        b"some avg10=1 avg60=2 avg300=3 total=4\nfull avg10 avg60=2 avg300=3 total=4\n",
        b"some avg10=1 avg60=2 avg300=3 total=4\nfull avg10=1 avg60=2 avg300=3\n",
        # malformed values
        b"some avg10=1 avg60=2 avg300=3 total=4\nfull avg10=x avg60=2 avg300=3 total=4\n",
        b"some avg10=1 avg60=2 avg300=3 total=4\nfull avg10=1 avg60=2 avg300=3 total=1.5\n",
        b"some avg10=1 avg60=2 avg300=3 total=4\nfull avg10=1 avg60=2 avg300=3 total=\n",
        # experimental format with too few lines or a wrong line kind
        b"aggr 1\nsome 1 2 3\n",
        b"aggr 1\nsome 1 2 3\nsome 4 5 6\n",
        b"aggr 1\nsome 1 2 3\nfull 4 5 x\n",
    ],
)
def test_parse_pressure_malformed_full_is_none(data: bytes) -> None:
    """Reference 4.4 (PSI parsing): malformed keys or values make the reading
    absent instead of raising."""
    assert fs.parse_pressure(data, full=True) is None


def test_parse_pressure_some_ignores_a_malformed_full_line() -> None:
    """Reference 4.4: SOME only parses line 0 (the full line is never looked at)."""
    data = b"some avg10=1.50 avg60=2.00 avg300=3.00 total=4\nfull broken\n"
    assert fs.parse_pressure(data, full=False) == Pressure(1.5, 2.0, 3.0, 4)
    assert fs.parse_pressure(data, full=True) is None


# --- keyed files -----------------------------------------------------------------


def test_keyed_values_get_reads_single_keys() -> None:
    """FsTest.GetMemstat: key/value parsing of memory.stat."""
    kv = KeyedValues(MEMORY_STAT)
    assert kv.get("anon") == 1294168064
    assert kv.get("file") == 3870687232
    assert kv.get("pglazyfree") == 0
    assert kv.get("workingset_nodereclaim") == 0
    assert kv.get("pgscan") == 787288


def test_keyed_values_missing_key_is_none() -> None:
    """FsTest.GetMemstat ("asdf" missing); here absent rather than 0."""
    kv = KeyedValues(MEMORY_STAT)
    assert kv.get("asdf") is None
    assert kv.get("") is None


def test_keyed_values_get_matches_whole_key_only() -> None:
    """``anon`` must not match ``anon_thp`` and ``file`` not ``file_mapped``."""
    kv = KeyedValues(b"anon_thp 1\nfile_mapped 2\nanon 3\nfile 4\n")
    assert kv.get("anon") == 3
    assert kv.get("file") == 4
    assert kv.get("thp") is None
    assert kv.get("anon_th") is None


def test_keyed_values_get_does_not_parse_everything() -> None:
    """Module docstring: a key is found without parsing the whole file, so an
    unparsable line elsewhere does not hide it and ``get`` leaves the mapping unbuilt."""
    kv = KeyedValues(b"junk line without value\nweird x\nanon 5\n")
    assert kv.get("anon") == 5
    assert kv._parsed is None
    assert kv.get("weird") is None


def test_keyed_values_last_line_without_newline() -> None:
    """The final line may lack a newline."""
    kv = KeyedValues(b"a 1\nb 2")
    assert kv.get("b") == 2
    assert kv.as_dict() == {"a": 1, "b": 2}


def test_keyed_values_as_dict_parses_every_key() -> None:
    """FsTest.GetMemstat: the fixture memory.stat has 29 keys."""
    kv = KeyedValues(MEMORY_STAT)
    d = kv.as_dict()
    assert len(d) == 29
    assert d["anon"] == 1294168064
    assert d["pglazyfree"] == 0
    assert "asdf" not in d


def test_keyed_values_as_dict_skips_malformed_lines() -> None:
    """Reference 4.4 (memory_stat): non-matching lines are ignored."""
    kv = KeyedValues(b"first_key 12345\nnovalue\nbad x\n\nsecond_key 678910\nthirdkey 999999\n")
    assert kv.as_dict() == {"first_key": 12345, "second_key": 678910, "thirdkey": 999999}


def test_keyed_values_get_after_as_dict_agrees() -> None:
    """``get`` after ``as_dict`` answers from the parsed mapping consistently."""
    kv = KeyedValues(MEMORY_STAT)
    kv.as_dict()
    assert kv.get("anon") == 1294168064
    assert kv.get("asdf") is None


def test_keyed_values_lines() -> None:
    """``lines`` gives the text lines (for dumps) without the internal prefix."""
    kv = KeyedValues(b"a 1\nb 2\n")
    assert kv.lines() == ["a 1", "b 2"]
    assert KeyedValues(b"").lines() == []


# --- small cgroup files ----------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (b"populated 1\nfrozen 0\n", True),
        (b"populated 0\nfrozen 0\n", False),
        (b"frozen 1\npopulated 1\n", True),
        (b"populated 1", True),
        (b"populated 2\n", None),
        (b"populated\n", None),
        (b"populated yes\n", None),
        (b"frozen 0\n", None),
        (b"", None),
    ],
)
def test_parse_populated(data: bytes, expected: bool | None) -> None:
    """FsTest.ReadIsPopulated; reference 4.4: other values or a missing line are absent."""
    assert fs.parse_populated(data) is expected


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (b"1\n", True),
        (b"1", True),
        (b"0\n", False),
        (b"", False),
        (b"1\n1\n", False),
        (b"11\n", False),
        (b" 1\n", False),
    ],
)
def test_parse_oom_group_exactly_one_line_1(data: bytes, expected: bool) -> None:
    """FsTest.ReadMemoryOomGroup; reference 4.4: exactly one line ``1`` is true."""
    assert fs.parse_oom_group(data) is expected


def test_parse_pids() -> None:
    """FsTest.GetPids: one pid per line."""
    assert fs.parse_pids(b"123\n") == [123]
    assert fs.parse_pids(b"456\n789\n") == [456, 789]
    assert fs.parse_pids(b"") == []


def test_parse_pids_skips_unparsable_lines() -> None:
    """Module docstring: lines that are not pids are skipped (upstream would crash)."""
    assert fs.parse_pids(b"12\nabc\n\n34\n") == [12, 34]


# --- io.stat ---------------------------------------------------------------------


def test_parse_io_stat_fixture() -> None:
    """FsTest.ReadIostat: two devices, all six counters, in order."""
    assert fs.parse_io_stat(IO_STAT) == [
        IoStat("1:10", 1111111, 2222222, 33, 44, 5555555555, 6),
        IoStat("1:11", 2222222, 3333333, 44, 55, 6666666666, 7),
    ]


def test_parse_io_stat_empty_file_is_empty_list() -> None:
    """A cgroup that did no IO has an empty io.stat: present, no devices."""
    assert fs.parse_io_stat(b"") == []


@pytest.mark.parametrize(
    "bad_line",
    [
        b"1:12 rbytes=1 wbytes=2 rios=3 wios=4 dbytes=5\n",
        b"1:12 wbytes=2 rbytes=1 rios=3 wios=4 dbytes=5 dios=6\n",
        b"1:12 rbytes=1 wbytes=2 rios=3 wios=4 dbytes=5 dios=x\n",
        b"1:12 rbytes=1 wbytes=2 rios=3 wios=4 dbytes=5 dios\n",
        b"garbage\n",
    ],
)
def test_parse_io_stat_one_bad_line_spoils_the_whole_file(bad_line: bytes) -> None:
    """Reference 4.4 (io_stat): every line must match, else the whole field is absent."""
    assert fs.parse_io_stat(IO_STAT + bad_line) is None


def test_parse_io_stat_requires_numeric_major_minor() -> None:
    """Reference 4.4 / module docstring: lines are ``MAJ:MIN rbytes=...``; upstream's
    ``sscanf("%d:%d ...")`` rejects a device that is not two numbers."""
    line = b"sda rbytes=1 wbytes=2 rios=3 wios=4 dbytes=5 dios=6\n"
    assert fs.parse_io_stat(line) is None


def test_parse_io_stat_ignores_trailing_keys_after_dios() -> None:
    """Upstream parses each line with ``sscanf("%d:%d rbytes=%ld ... dios=%ld")`` and
    only requires the 8 conversions, so keys the kernel appends after ``dios`` (iocost's
    ``cost.usage=``, iolatency's ``use_delay=``) do not make the file absent."""
    data = (
        b"8:0 rbytes=1 wbytes=2 rios=3 wios=4 dbytes=5 dios=6 cost.vrate=100.00 cost.usage=7\n"
        b"8:16 rbytes=7 wbytes=8 rios=9 wios=10 dbytes=11 dios=12 use_delay=0 delay_nsec=0\n"
    )
    assert fs.parse_io_stat(data) == [
        IoStat("8:0", 1, 2, 3, 4, 5, 6),
        IoStat("8:16", 7, 8, 9, 10, 11, 12),
    ]


# --- /proc files -----------------------------------------------------------------


def test_parse_meminfo_fixture_kb_to_bytes() -> None:
    """FsTest.GetMeminfo: 49 entries, values *1024, HugePages_Total (no unit) 0."""
    info = fs.parse_meminfo(MEMINFO)
    assert len(info) == 49
    assert info["SwapTotal"] == 2097148 * 1024
    assert info["SwapFree"] == 1097041 * 1024
    assert info["MemTotal"] == 58616708 * 1024
    assert info["Active(anon)"] == 4024064 * 1024
    assert info["HugePages_Total"] == 0
    assert "asdf" not in info


def test_parse_meminfo_multiplies_by_1024_even_without_kb() -> None:
    """Reference 4.8 (quirk): the *1024 applies to lines without a ``kB`` unit."""
    info = fs.parse_meminfo(b"HugePages_Total:      12\nMemTotal:\t100 kB\n")
    assert info == {"HugePages_Total": 12 * 1024, "MemTotal": 100 * 1024}


def test_parse_meminfo_skips_lines_without_a_number() -> None:
    """Reference 4.8: only ``Name: number`` lines produce entries."""
    info = fs.parse_meminfo(b"garbage\nFoo:   bar kB\nBar:  5 kB\n\n")
    assert info == {"Bar": 5 * 1024}


def test_parse_swaps_sums_devices_in_bytes() -> None:
    """Reference 4.7: header skipped, size and used (KiB) summed over devices."""
    data = (
        b"Filename\t\t\t\tType\t\tSize\t\tUsed\t\tPriority\n"
        b"/dev/vda2                               partition\t2097148\t\t1000\t\t-2\n"
        b"/swapfile                               file\t\t1024\t\t24\t\t-3\n"
    )
    assert fs.parse_swaps(data) == ((2097148 + 1024) * 1024, (1000 + 24) * 1024)


def test_parse_swaps_header_only_is_zero() -> None:
    """No swap devices: total and used are 0."""
    assert fs.parse_swaps(b"Filename\t\t\t\tType\t\tSize\t\tUsed\t\tPriority\n") == (0, 0)
    assert fs.parse_swaps(b"") == (0, 0)


@pytest.mark.parametrize(
    "line",
    [
        b"/dev/vda2 partition 2097148\n",
        b"/dev/vda2 partition big 0 -2\n",
        b"/dev/vda2 partition 10 used -2\n",
    ],
)
def test_parse_swaps_malformed_is_none(line: bytes) -> None:
    """Module docstring / reference 4.7: a malformed line (upstream crashes) makes
    the whole file unreadable."""
    assert fs.parse_swaps(b"Filename\tType\tSize\tUsed\tPriority\n" + line) is None


# --- write_control ---------------------------------------------------------------


def test_write_control_writes_without_truncation_or_newline(tmp_path: Path) -> None:
    """Reference appendix A.11: control files are written without truncation."""
    f = tmp_path / "memory.high"
    f.write_text("1234567890\n")
    fs.write_control(str(f), "54321")
    assert f.read_text() == "5432167890\n"


def test_write_control_does_not_create_files(tmp_path: Path) -> None:
    """A control file that does not exist is not created (raises OSError)."""
    with pytest.raises(OSError):
        fs.write_control(str(tmp_path / "memory.high"), "1")
    assert not (tmp_path / "memory.high").exists()
