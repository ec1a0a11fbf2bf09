"""``--device`` and coefficient parsing (``oomd.cgroup.iocost``; upstream Main.cpp
parseDevices/parseCoeffs and Fs::getDeviceType)."""

from __future__ import annotations

from pathlib import Path

import pytest

from oomd.cgroup.iocost import DeviceType, IoCostCoeffs, device_type, parse_coeffs, parse_devices


def rotational(root: Path, dev: str, content: str) -> None:
    queue = root / dev / "queue"
    queue.mkdir(parents=True)
    (queue / "rotational").write_text(content)


@pytest.mark.parametrize(
    ("content", "expected"),
    [("1\n", DeviceType.HDD), ("0\n", DeviceType.SSD), ("1", DeviceType.HDD)],
)
def test_device_type_from_rotational(tmp_path: Path, content: str, expected: DeviceType) -> None:
    rotational(tmp_path, "8:0", content)
    assert device_type("8:0", str(tmp_path)) == expected


@pytest.mark.parametrize("content", ["2\n", "0\n\n", "", " 1\n", "1\n0\n"])
def test_anything_but_one_line_of_0_or_1_is_an_error(tmp_path: Path, content: str) -> None:
    rotational(tmp_path, "8:0", content)
    with pytest.raises(ValueError, match="neither 0 nor 1"):
        device_type("8:0", str(tmp_path))


def test_missing_device_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"8:0/queue/rotational: No such file"):
        device_type("8:0", str(tmp_path))


def test_device_list(tmp_path: Path) -> None:
    rotational(tmp_path, "8:0", "1\n")
    rotational(tmp_path, "259:1", "0\n")
    assert parse_devices(",8:0,259:1,", str(tmp_path)) == {
        "8:0": DeviceType.HDD,
        "259:1": DeviceType.SSD,
    }
    assert parse_devices("", str(tmp_path)) == {}


def test_coefficients() -> None:
    assert parse_coeffs("1,2,3") == IoCostCoeffs(1.0, 2.0, 3.0, 0.0, 0.0, 0.0)
    assert parse_coeffs(" 1e-3,inf,-2") == IoCostCoeffs(1e-3, float("inf"), -2.0)
    assert parse_coeffs("") == IoCostCoeffs()
    for bad in ("x", "1,,y", "1e400", " "):
        with pytest.raises(ValueError):
            parse_coeffs(bad)
