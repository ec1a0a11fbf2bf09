"""oomd(8), ``man/oomd.8``: valid roff (``groff -man -ww -z``, else ``mandoc -Tlint``),
and an entry for every flag that ``oomd --help`` and ``oomd install-service --help``
list, so a new flag without documentation fails here."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.support.daemon import our_oomd

MANPAGE = Path(__file__).resolve().parents[1] / "man" / "oomd.8"


def _flags(help_text: str) -> set[str]:
    return set(re.findall(r"(?<![\w-])(--?[a-zA-Z][\w-]*)", help_text))


def _documented() -> set[str]:
    """The flags the page gives an entry: in the lines that start a .TP item (or a
    .TQ) and in the synopsis, with roff's ``\\-`` read as ``-``."""
    text = MANPAGE.read_text().replace("\\-", "-")
    return _flags(text)


def _help(*args: str) -> str:
    result = subprocess.run([*our_oomd(), *args, "--help"], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    return result.stdout + result.stderr


def test_the_page_is_valid_roff() -> None:
    if shutil.which("groff"):
        cmd = ["groff", "-man", "-ww", "-z", str(MANPAGE)]
    elif shutil.which("mandoc"):
        cmd = ["mandoc", "-Tlint", "-W", "warning", str(MANPAGE)]
    else:
        pytest.skip("neither groff nor mandoc is installed (make test installs groff-base)")
    result = subprocess.run(cmd, capture_output=True, text=True)
    assert result.returncode == 0 and result.stderr == "", result.stderr


def test_every_flag_of_help_has_an_entry() -> None:
    daemon_flags = _flags(_help().split("subcommands")[0])
    assert {"--dry-run", "-C", "--print-default-config"} <= daemon_flags  # the parse works
    missing = daemon_flags - _documented()
    assert not missing, f"flags of `oomd --help` missing from {MANPAGE}: {sorted(missing)}"
    service_flags = _flags(_help("install-service").split("options:")[1])
    assert "--unit-dir" in service_flags
    missing = service_flags - _documented()
    assert not missing, f"flags of install-service missing from {MANPAGE}: {sorted(missing)}"


def test_every_flag_has_its_own_item() -> None:
    """Not just named somewhere: each daemon flag starts a .TP/.TQ item."""
    text = MANPAGE.read_text().replace("\\-", "-")
    items = set()
    for tag in re.findall(r"^\.T[PQ]\n(.*)$", text, flags=re.MULTILINE):
        items |= _flags(tag)
    missing = _flags(_help().split("subcommands")[0]) - items
    assert not missing, f"flags without an item in OPTIONS: {sorted(missing)}"


def test_the_page_is_viewable_with_man_l() -> None:
    if shutil.which("man") is None:
        pytest.skip("man(1) is not installed")
    result = subprocess.run(
        ["man", "-l", "-P", "cat", str(MANPAGE)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert "install-service" in result.stdout and "EXIT STATUS" in result.stdout


COMPLETION = MANPAGE.parents[1] / "completion" / "oomd"


def _complete(*words: str) -> set[str]:
    """What the bash completion offers for the command line ``words`` (the last one is
    the word being completed)."""
    script = (
        f"source {COMPLETION}\n"
        f"COMP_WORDS=({' '.join(repr(w) for w in words)}); COMP_CWORD={len(words) - 1}\n"
        "_oomd; printf '%s\\n' \"${COMPREPLY[@]}\""
    )
    result = subprocess.run(["bash", "-c", script], capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stderr
    return set(result.stdout.split())


def test_bash_completion_offers_every_long_flag_and_the_subcommand() -> None:
    if shutil.which("bash") is None:
        pytest.skip("bash is not installed")
    long_flags = {f for f in _flags(_help().split("subcommands")[0]) if f.startswith("--")}
    assert _complete("oomd", "--") == long_flags
    assert _complete("oomd", "inst") == {"install-service"}
    assert "--unit-dir" in _complete("oomd", "install-service", "--")
