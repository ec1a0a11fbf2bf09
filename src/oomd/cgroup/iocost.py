"""The io cost model's command-line inputs: ``--device``, ``--ssd-coeffs``,
``--hdd-coeffs`` (upstream ``Main.cpp`` and ``Fs::getDeviceType``; docs/io_cost.md).

``--device`` takes comma-separated ``<major>:<minor>`` ids; each is checked at once by
reading ``/sys/dev/block/<id>/queue/rotational`` (``1``: HDD, ``0``: SSD, anything else
or unreadable: an error). A coefficient list is up to six comma-separated numbers in
the order read iops, read bandwidth, write iops, write bandwidth, trim iops, trim
bandwidth; missing trailing values are 0, extra ones ignored, empty items skipped, and
each item is read like C's ``stod`` (a numeric prefix is enough).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from enum import IntEnum

from oomd.cgroup import fs
from oomd.cnum import c_float_prefix
from oomd.typeshim import NamedTuple


class DeviceType(IntEnum):
    SSD = 0
    HDD = 1


class IoCostCoeffs(NamedTuple):
    read_iops: float = 0.0
    readbw: float = 0.0
    write_iops: float = 0.0
    writebw: float = 0.0
    trim_iops: float = 0.0
    trimbw: float = 0.0


DEFAULT_HDD_COEFFS = IoCostCoeffs(1.31e-3, 1.13e-7, 2.58e-1, 5.04e-7, 0.0, 0.0)
DEFAULT_SSD_COEFFS = IoCostCoeffs(1.21e-2, 6.25e-7, 1.07e-3, 2.61e-7, 2.37e-2, 9.10e-10)


def io_cost(
    stats: Iterable[fs.IoStat],
    devices: Mapping[str, DeviceType],
    ssd: IoCostCoeffs,
    hdd: IoCostCoeffs,
) -> float:
    """The cumulative io cost of a cgroup's ``io.stat``: each listed device's counters
    weighted by its kind's coefficients (upstream ``CgroupContext::getIoCostCumulative``).
    Devices not given with ``--device`` cost nothing."""
    cost = 0.0
    for stat in stats:
        device = devices.get(stat.dev)
        if device is None:
            continue
        c = ssd if device == DeviceType.SSD else hdd
        cost += (
            stat.rios * c.read_iops
            + stat.rbytes * c.readbw
            + stat.wios * c.write_iops
            + stat.wbytes * c.writebw
            + stat.dios * c.trim_iops
            + stat.dbytes * c.trimbw
        )
    return cost


#: Where block devices are listed by ``major:minor``; a parameter for tests.
DEV_BLOCK_ROOT = "/sys/dev/block"


def device_type(dev_id: str, root: str = DEV_BLOCK_ROOT) -> DeviceType:
    """SSD or HDD from the device's ``queue/rotational``; ValueError otherwise."""
    path = f"{root.rstrip('/')}/{dev_id}/queue/rotational"
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as e:
        raise ValueError(f"{path}: {e.strerror}") from None
    lines = data.decode(errors="replace").split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    if lines == ["1"]:
        return DeviceType.HDD
    if lines == ["0"]:
        return DeviceType.SSD
    raise ValueError(f"{path}: neither 0 nor 1")


def parse_devices(text: str, root: str = DEV_BLOCK_ROOT) -> dict[str, DeviceType]:
    """``--device``: each ``major:minor`` id mapped to its type."""
    return {dev_id: device_type(dev_id, root) for dev_id in text.split(",") if dev_id}


def parse_coeffs(text: str) -> IoCostCoeffs:
    """``--ssd-coeffs``/``--hdd-coeffs``; ValueError naming the bad item."""
    values: list[float] = []
    for item in [part for part in text.split(",") if part][:6]:
        parsed = c_float_prefix(item)
        if parsed is None:
            raise ValueError(f"{item!r} is not a number")
        value = parsed[0]
        if math.isinf(value) and "inf" not in item.lower():
            # stod's out_of_range (upstream aborts).
            raise ValueError(f"{item!r} is out of range")
        values.append(value)
    values += [0.0] * (6 - len(values))
    return IoCostCoeffs(*values)
