"""OLOG and the kmsg kill log (upstream Log.cpp; LogTest: VerifyOutputSimple, logTime)."""

from __future__ import annotations

import re
from pathlib import Path

from oomd import log


def test_kmsg_line_is_prefix_colon_message_newline_in_one_write(
    tmp_path: Path, oolog: Path
) -> None:
    """LogTestKmsg.VerifyOutputSimple; the bare message is echoed to OLOG."""
    path = tmp_path / "kmsg"
    kmsg = log.Kmsg(str(path))
    kmsg.write("1.00 2.00 3.00 a/b 42 ruleset:[r] detectorgroup:[g] killer:x v2")
    kmsg.write("already terminated\n", "")
    kmsg.close()
    assert path.read_text() == (
        "oomd kill: 1.00 2.00 3.00 a/b 42 ruleset:[r] detectorgroup:[g] killer:x v2\nalready terminated\n"
    )
    assert (
        oolog.read_text()
        .splitlines()[0]
        .endswith("] 1.00 2.00 3.00 a/b 42 ruleset:[r] detectorgroup:[g] killer:x v2")
    )


def test_kmsg_override_file_is_created_mode_0644_and_appended(tmp_path: Path) -> None:
    path = tmp_path / "kmsg"
    path.write_text("old\n")
    kmsg = log.Kmsg(str(path))
    kmsg.write("new")
    kmsg.close()
    assert path.read_text() == "old\noomd kill: new\n"
    created = tmp_path / "created"
    log.Kmsg(str(created)).close()
    assert created.stat().st_mode & 0o777 == 0o644


def test_olog_line_has_upstream_timestamp_and_source(oolog: Path) -> None:
    """LogStream.logTime: ``MMDD HH:MM:SS`` then ``[file:line]``."""
    log.info("hello")
    line = oolog.read_text().splitlines()[0]
    assert re.fullmatch(r"\d{4} \d\d:\d\d:\d\d \[test_log\.py:\d+\] hello", line)


def test_silencing_hides_olog_but_not_kmsg(tmp_path: Path, oolog: Path) -> None:
    """silence-logs "plugins" hides OLOG output, never kmsg writes (reference 3.5)."""
    kmsg = log.Kmsg(str(tmp_path / "kmsg"))
    previous = log.set_silenced(True)
    try:
        log.info("hidden")
        kmsg.write("kill line")
        log.always("shown anyway")
    finally:
        log.set_silenced(previous)
    kmsg.close()
    text = oolog.read_text()
    assert "hidden" not in text and "kill line" not in text and "shown anyway" in text
    assert (tmp_path / "kmsg").read_text() == "oomd kill: kill line\n"
