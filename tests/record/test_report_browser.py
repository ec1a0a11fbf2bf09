"""``oomd report``'s page in a real browser: Debian's headless Chromium renders its
plots (coloured SVG pixels in a screenshot) and logs no console error."""

from __future__ import annotations

import os
import shutil
import struct
import subprocess
import zlib
from pathlib import Path

import pytest

from tests.record.scenario import record_incident, write_config
from tests.support.daemon import our_oomd


def chromium() -> str:
    for name in ("chromium", "chromium-headless-shell", "chromium-browser"):
        found = shutil.which(name)
        if found:
            return found
    pytest.skip("no chromium (make chromium, or apt-get install chromium)")


def png_pixels(data: bytes) -> tuple[int, int, list[bytes]]:
    """Width, height and RGB(A) rows of an 8-bit non-interlaced PNG (what Chromium
    writes), decoded with the stdlib."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat, header = 8, b"", b""
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind, body = data[pos + 4 : pos + 8], data[pos + 8 : pos + 8 + length]
        pos += 12 + length
        if kind == b"IHDR":
            header = body
        elif kind == b"IDAT":
            idat += body
    width, height, depth, color = struct.unpack(">IIBB", header[:10])
    assert depth == 8 and color in (2, 6), (depth, color)
    bpp = 3 if color == 2 else 4
    raw = zlib.decompress(idat)
    stride = width * bpp
    rows: list[bytes] = []
    prev = bytearray(stride)
    for y in range(height):
        kind = raw[y * (stride + 1)]
        line = bytearray(raw[y * (stride + 1) + 1 : (y + 1) * (stride + 1)])
        for i in range(stride):
            a = line[i - bpp] if i >= bpp else 0
            b = prev[i]
            c = prev[i - bpp] if i >= bpp else 0
            if kind == 1:
                line[i] = (line[i] + a) & 0xFF
            elif kind == 2:
                line[i] = (line[i] + b) & 0xFF
            elif kind == 3:
                line[i] = (line[i] + (a + b) // 2) & 0xFF
            elif kind == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                pred = a if pa <= pb and pa <= pc else b if pb <= pc else c
                line[i] = (line[i] + pred) & 0xFF
        rows.append(bytes(line))
        prev = line
    return width, bpp, rows


def count_near(rows: list[bytes], bpp: int, rgb: tuple[int, int, int]) -> int:
    n = 0
    for row in rows:
        for i in range(0, len(row), bpp):
            if all(abs(row[i + k] - rgb[k]) <= 40 for k in range(3)):
                n += 1
    return n


def test_report_renders_its_plots_in_chromium(tmp_path: Path) -> None:
    browser = chromium()
    trace = tmp_path / "incident.oomd-trace"
    assert record_incident(tmp_path / "rec", str(trace))
    page = tmp_path / "report.html"
    run = subprocess.run(
        [
            *our_oomd(),
            "report",
            "-C",
            write_config(tmp_path / "c.json"),
            str(trace),
            "-o",
            str(page),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    shot = tmp_path / "report.png"
    home = tmp_path / "home"
    home.mkdir()
    proc = subprocess.run(
        [
            browser,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--hide-scrollbars",
            f"--user-data-dir={tmp_path / 'profile'}",
            "--enable-logging=stderr",
            "--v=0",
            "--window-size=1000,1400",
            f"--screenshot={shot}",
            page.as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "HOME": str(home)},
    )
    assert shot.exists(), proc.stderr[-3000:]
    console = [line for line in proc.stderr.splitlines() if "CONSOLE" in line]
    assert not [line for line in console if "ERROR" in line or "Uncaught" in line], console
    keep = os.environ.get("OOMD_REPORT_SCREENSHOT")
    if keep:
        shutil.copy(shot, keep)
    _, bpp, rows = png_pixels(shot.read_bytes())
    # The plots' strokes: PSI avg10 (blue), avg60 (orange), kill markers (black) and
    # the detector-held bands (pink) are all on screen.
    assert count_near(rows, bpp, (0x1F, 0x77, 0xB4)) > 200
    assert count_near(rows, bpp, (0xFF, 0x7F, 0x0E)) > 50
    assert count_near(rows, bpp, (0xF8, 0xDA, 0xDA)) > 1000
