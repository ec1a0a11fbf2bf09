"""The daemon's import path stays light (bench/README.md: RSS at 1,000 cgroups)."""

from __future__ import annotations

import subprocess
import sys

import pytest


def test_the_daemon_does_not_import_dataclasses() -> None:
    code = (
        "import sys, oomd.daemon, oomd.cli\n"
        "from oomd.plugins import registry\n"
        "for name in registry.names(): registry.get(name)\n"
        "print('dataclasses' in sys.modules)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "False"


@pytest.mark.parametrize(
    "module",
    # importlib.resources brings pathlib, tempfile, shutil, zipfile: ~2 MiB of RSS;
    # typing alone ~1.9 MiB (oomd.typeshim says how our modules do without it).
    ["importlib.resources", "importlib.metadata", "tempfile", "pathlib", "json", "typing"],
)
def test_the_daemon_does_not_import_heavy_stdlib_modules(module: str) -> None:
    code = (
        "import sys, oomd.daemon, oomd.cli\n"
        "from oomd.plugins import registry\n"
        "for name in registry.names(): registry.get(name)\n"
        f"print({module!r} in sys.modules)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "False"
