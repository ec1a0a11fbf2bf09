"""Host-wide readings (``oomd.cgroup.system``) on a fake /proc.

Upstream reference: ``FsTest.GetMeminfo``, ``FsTest.GetVmstat``, ``FsTest.Swappiness``,
``Fs::readRootMempressure`` and reference sections 4.5, 4.7, 4.8.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from oomd.cgroup.fs import Pressure
from oomd.cgroup.system import SystemContext
from tests.support.tree import FakeProc

GiB = 1 << 30
KiB = 1024


def test_meminfo_in_bytes(proc: FakeProc) -> None:
    """FsTest.GetMeminfo: values in bytes (kB * 1024)."""
    proc.meminfo(total=16 * GiB, free=3 * GiB, swap_total=2 * GiB, swap_free=GiB)
    info = SystemContext(proc.path).meminfo()
    assert info is not None
    assert info["MemTotal"] == 16 * GiB
    assert info["MemFree"] == 3 * GiB
    assert info["SwapTotal"] == 2 * GiB
    assert info["SwapFree"] == GiB


def test_meminfo_missing_file_is_none(proc: FakeProc) -> None:
    """Reference 4.10: an unreadable /proc/meminfo is absent."""
    (proc.root / "meminfo").unlink()
    system = SystemContext(proc.path)
    assert system.meminfo() is None
    assert system.meminfo_value("MemTotal") == 0
    assert system.memory_used() is None


def test_meminfo_value_missing_key_is_zero(proc: FakeProc) -> None:
    """FsTest.GetMeminfo / reference 4.8: missing keys read as 0."""
    proc.meminfo(total=8 * GiB, free=GiB)
    system = SystemContext(proc.path)
    assert system.meminfo_value("MemTotal") == 8 * GiB
    assert system.meminfo_value("asdf") == 0


def test_memory_used_is_memtotal_minus_memfree(proc: FakeProc) -> None:
    """Reference 4.4/4.5: the root's usage is MemTotal - MemFree."""
    proc.meminfo(total=8 * GiB, free=3 * GiB)
    assert SystemContext(proc.path).memory_used() == 5 * GiB


def test_swaps_totals_over_several_devices(proc: FakeProc) -> None:
    """Reference 4.7: /proc/swaps total and used summed over devices (KiB -> bytes)."""
    proc.swaps((GiB, 100 * KiB), (2 * GiB, 0), (512 * KiB, 512 * KiB))
    assert SystemContext(proc.path).swaps() == (3 * GiB + 512 * KiB, 612 * KiB)


def test_swaps_no_devices_is_zero(proc: FakeProc) -> None:
    """Only the header: no swap."""
    assert SystemContext(proc.path).swaps() == (0, 0)


def test_swaps_missing_file_is_zero(proc: FakeProc) -> None:
    """Reference 4.7: a missing /proc/swaps reads as 0/0."""
    (proc.root / "swaps").unlink()
    assert SystemContext(proc.path).swaps() == (0, 0)


def test_swaps_malformed_is_zero(proc: FakeProc) -> None:
    """Module docstring (upstream crashes): a malformed /proc/swaps reads as (0, 0)."""
    (proc.root / "swaps").write_text(
        "Filename\tType\tSize\tUsed\tPriority\n/swap0\tfile\tlots\t0\t-2\n"
    )
    assert SystemContext(proc.path).swaps() == (0, 0)


def test_swaps_ignores_meminfo(proc: FakeProc) -> None:
    """Reference 4.7: swap totals come from /proc/swaps, not meminfo."""
    proc.meminfo(swap_total=4 * GiB, swap_free=GiB)
    proc.swaps((GiB, 256 * KiB))
    assert SystemContext(proc.path).swaps() == (GiB, 256 * KiB)


def test_pressure_from_proc_pressure(proc: FakeProc) -> None:
    """Reference 4.4/4.5: root pressures come from /proc/pressure/<resource>."""
    proc.pressure("memory", 12.5, 6.25, 1.5)
    proc.pressure("io", 3.0, 2.0, 1.0)
    system = SystemContext(proc.path)
    mem = system.pressure("memory", full=True)
    io = system.pressure("io", full=True)
    assert mem is not None and io is not None
    assert (mem.avg10, mem.avg60, mem.avg300) == pytest.approx((12.5, 6.25, 1.5))
    assert (io.avg10, io.avg60, io.avg300) == pytest.approx((3.0, 2.0, 1.0))


def test_pressure_some_and_full_lines(proc: FakeProc) -> None:
    """Reference 4.4 (PSI): some uses line 0, full line 1."""
    (proc.root / "pressure" / "memory").write_text(
        "some avg10=1.00 avg60=2.00 avg300=3.00 total=40\n"
        "full avg10=0.50 avg60=0.25 avg300=0.10 total=20\n"
    )
    system = SystemContext(proc.path)
    assert system.pressure("memory", full=False) == Pressure(1.0, 2.0, 3.0, 40)
    assert system.pressure("memory", full=True) == Pressure(0.5, 0.25, 0.1, 20)


def test_memory_pressure_falls_back_to_proc_mempressure(proc: FakeProc) -> None:
    """Upstream Fs::readRootMempressure: /proc/pressure/memory, else /proc/mempressure
    (the experimental aggr format of old kernels)."""
    (proc.root / "pressure" / "memory").unlink()
    (proc.root / "mempressure").write_text("aggr 1234\nsome 1.00 2.00 3.00\nfull 4.00 5.00 6.00\n")
    system = SystemContext(proc.path)
    assert system.pressure("memory", full=True) == Pressure(4.0, 5.0, 6.0, None)
    assert system.pressure("memory", full=False) == Pressure(1.0, 2.0, 3.0, None)


def test_io_pressure_has_no_fallback(proc: FakeProc) -> None:
    """Only memory has the /proc/mempressure fallback."""
    (proc.root / "pressure" / "io").unlink()
    (proc.root / "mempressure").write_text("aggr 1\nsome 1 2 3\nfull 4 5 6\n")
    assert SystemContext(proc.path).pressure("io", full=True) is None


def test_pressure_missing_everywhere_is_none(proc: FakeProc) -> None:
    """No PSI at all (pre-4.20 kernel without the patch): absent."""
    (proc.root / "pressure" / "memory").unlink()
    assert SystemContext(proc.path).pressure("memory", full=True) is None


def test_vmstat_keyed_values(proc: FakeProc) -> None:
    """FsTest.GetVmstat: key/value lines; a missing key is absent."""
    proc.vmstat(first_key=12345, second_key=678910, thirdkey=999999)
    vmstat = SystemContext(proc.path).vmstat()
    assert vmstat is not None
    assert vmstat.get("first_key") == 12345
    assert vmstat.get("thirdkey") == 999999
    assert vmstat.get("asdf") is None


def test_vmstat_missing_is_none(proc: FakeProc) -> None:
    """No /proc/vmstat: absent."""
    assert SystemContext(proc.path).vmstat() is None


def test_swappiness(proc: FakeProc) -> None:
    """FsTest.Swappiness: /proc/sys/vm/swappiness is a single integer."""
    system = SystemContext(proc.path)
    assert system.swappiness() is None
    (proc.root / "sys" / "vm").mkdir(parents=True)
    (proc.root / "sys" / "vm" / "swappiness").write_text("42\n")
    system.refresh()
    assert system.swappiness() == 42


def test_readings_are_cached_until_refresh(proc: FakeProc) -> None:
    """Reference 4.3/4.7: host readings are taken once per tick; a file changed
    mid-tick is seen only after refresh()."""
    proc.meminfo(total=8 * GiB, free=4 * GiB)
    proc.swaps((GiB, 0))
    proc.pressure("memory", 10.0)
    proc.vmstat(pswpout=1)
    system = SystemContext(proc.path)
    assert system.memory_used() == 4 * GiB
    assert system.swaps() == (GiB, 0)
    mem = system.pressure("memory", full=True)
    assert mem is not None and mem.avg10 == pytest.approx(10.0)
    vmstat = system.vmstat()
    assert vmstat is not None and vmstat.get("pswpout") == 1

    proc.meminfo(total=8 * GiB, free=GiB)
    proc.swaps((2 * GiB, GiB))
    proc.pressure("memory", 50.0)
    proc.vmstat(pswpout=2)
    assert system.memory_used() == 4 * GiB
    assert system.meminfo_value("MemFree") == 4 * GiB
    assert system.swaps() == (GiB, 0)
    mem = system.pressure("memory", full=True)
    assert mem is not None and mem.avg10 == pytest.approx(10.0)
    vmstat = system.vmstat()
    assert vmstat is not None and vmstat.get("pswpout") == 1

    system.refresh()
    assert system.memory_used() == 7 * GiB
    assert system.swaps() == (2 * GiB, GiB)
    mem = system.pressure("memory", full=True)
    assert mem is not None and mem.avg10 == pytest.approx(50.0)
    vmstat = system.vmstat()
    assert vmstat is not None and vmstat.get("pswpout") == 2


def test_missing_file_is_cached_for_the_tick(proc: FakeProc) -> None:
    """Module docstrings: one tick sees one snapshot, so a file that appears mid-tick
    is not seen until refresh()."""
    (proc.root / "meminfo").unlink()
    system = SystemContext(proc.path)
    assert system.meminfo() is None
    proc.meminfo(total=2 * GiB, free=GiB)
    assert system.meminfo() is None
    system.refresh()
    assert system.memory_used() == GiB


def test_proc_root_trailing_slash(proc: FakeProc) -> None:
    """The proc root may be given with a trailing slash."""
    proc.meminfo(total=2 * GiB, free=GiB)
    assert SystemContext(proc.path + "/").memory_used() == GiB


# -- additions for the detectors (issue 3) -------------------------------------------


def test_memory_used_needs_memtotal_and_memfree(proc: FakeProc) -> None:
    """Upstream Fs::readRootMemcurrent: the root's usage is absent (not MemTotal - 0)
    when either key is missing."""
    (proc.root / "meminfo").write_text("MemTotal:  8388608 kB\n")
    assert SystemContext(proc.path).memory_used() is None
    (proc.root / "meminfo").write_text("MemFree:  8388608 kB\n")
    assert SystemContext(proc.path).memory_used() is None


def test_read_meminfo_is_fresh_and_takes_a_path(proc: FakeProc, tmp_path: Path) -> None:
    """For plugins that read MemTotal at start-up (memory_above's meminfo_location):
    a fresh read, of /proc/meminfo or of the file given; OSError when unreadable."""
    proc.meminfo(total=8 * GiB)
    system = SystemContext(proc.path)
    assert system.meminfo_value("MemTotal") == 8 * GiB
    proc.meminfo(total=4 * GiB)
    assert system.read_meminfo()["MemTotal"] == 4 * GiB
    other = tmp_path / "meminfo"
    other.write_text("MemTotal:       8388608 kB\n")
    assert system.read_meminfo(str(other)) == {"MemTotal": 8 * GiB}
    with pytest.raises(OSError):
        system.read_meminfo(str(tmp_path / "absent"))


def test_vmstat_line_without_a_space_makes_it_unreadable(proc: FakeProc) -> None:
    """Reference 9 item 21 (HEAD Fs::getVmstat): such a line fails the whole read
    (0.5.0 aborts); vmstat_value() then reads 0."""
    (proc.root / "vmstat").write_text("pgscan_kswapd 5\nbogus\npgscan_direct 7\n")
    system = SystemContext(proc.path)
    assert system.vmstat() is None
    assert system.vmstat_value("pgscan_kswapd") == 0
    (proc.root / "vmstat").write_text("pgscan_kswapd 5\n\npgscan_direct 7\n")
    system.refresh()
    assert system.vmstat() is None


def test_vmstat_value_missing_key_is_zero(proc: FakeProc) -> None:
    proc.vmstat(pgscan_kswapd=5)
    system = SystemContext(proc.path)
    assert (system.vmstat_value("pgscan_kswapd"), system.vmstat_value("nope")) == (5, 0)


def test_swapout_rate_between_ticks(proc: FakeProc) -> None:
    """Reference 4.7 (Oomd.cpp updateContext): (pswpout delta) * page size / seconds;
    0 on the first sample. The time is the tick's, given to refresh()."""
    system = SystemContext(proc.path, page_size=4096)
    proc.vmstat(pswpout=1000)
    system.refresh(100.0)
    assert system.swapout_bps() == 0.0
    proc.vmstat(pswpout=1500)
    system.refresh(105.0)
    assert system.swapout_bps() == 500 * 4096 / 5
    proc.vmstat(pswpout=1500)
    system.refresh(110.0)
    assert system.swapout_bps() == 0.0


def test_swapout_rate_is_sampled_once_per_tick(proc: FakeProc) -> None:
    system = SystemContext(proc.path, page_size=4096)
    proc.vmstat(pswpout=0)
    system.refresh(0.0)
    system.swapout_bps()
    proc.vmstat(pswpout=10)
    system.refresh(1.0)
    assert system.swapout_bps() == 10 * 4096
    proc.vmstat(pswpout=1000)  # changed mid-tick: not seen, and the rate is kept
    assert system.swapout_bps() == 10 * 4096


def test_swapout_rate_over_ticks_nobody_asked_about(proc: FakeProc) -> None:
    """Sampled only when asked: the rate then covers the time since the last sample."""
    system = SystemContext(proc.path, page_size=4096)
    proc.vmstat(pswpout=0)
    system.refresh(0.0)
    system.swapout_bps()
    for t in (1.0, 2.0, 3.0):
        system.refresh(t)
    proc.vmstat(pswpout=40)
    system.refresh(4.0)
    assert system.swapout_bps() == 10 * 4096


@pytest.mark.parametrize("content", [None, "pgpgout 5\n", "pswpout 5\nbroken\n"])
def test_swapout_rate_without_pswpout_is_zero_and_restarts(
    proc: FakeProc, content: str | None
) -> None:
    """Upstream crashes on a vmstat without pswpout; here the rate is 0 and the next
    readable sample starts a new history."""
    system = SystemContext(proc.path, page_size=4096)
    proc.vmstat(pswpout=0)
    system.refresh(0.0)
    system.swapout_bps()
    if content is None:
        (proc.root / "vmstat").unlink()
    else:
        (proc.root / "vmstat").write_text(content)
    system.refresh(1.0)
    assert system.swapout_bps() == 0.0
    proc.vmstat(pswpout=100)
    system.refresh(2.0)
    assert system.swapout_bps() == 0.0  # first sample of the new history
    proc.vmstat(pswpout=200)
    system.refresh(3.0)
    assert system.swapout_bps() == 100 * 4096


def test_swapout_rate_uses_the_clock_when_refresh_has_no_time(proc: FakeProc) -> None:
    now = [50.0]
    system = SystemContext(proc.path, clock=lambda: now[0], page_size=4096)
    proc.vmstat(pswpout=0)
    system.refresh()
    system.swapout_bps()
    now[0] = 52.0
    proc.vmstat(pswpout=2)
    system.refresh()
    assert system.swapout_bps() == 4096.0
    assert system.page_size == 4096
    assert SystemContext(proc.path).page_size > 0


def test_read_meminfo_refuses_a_fifo_or_device_at_once(tmp_path: Path) -> None:
    """Issue 12: ``meminfo_location`` naming a FIFO hung ``-c`` in ``open()``."""
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    for path in (str(fifo), "/dev/zero"):
        with pytest.raises(OSError, match="not a regular file"):
            SystemContext().read_meminfo(path)
