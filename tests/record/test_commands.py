"""The operator's commands on a recorded incident: replay, --compare, report, errors."""

from __future__ import annotations

import shutil
import sqlite3
import subprocess
from pathlib import Path

import pytest

from tests.record.scenario import record_incident, write_config
from tests.support.daemon import our_oomd


@pytest.fixture(scope="module")
def incident(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("incident")
    out = tmp / "incident.oomd-trace"
    assert record_incident(tmp / "rec", str(out))
    return out


def oomd(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*our_oomd(), *args], capture_output=True, text=True, timeout=60)


def test_replay_prints_kill_lines_and_ranking(incident: Path, tmp_path: Path) -> None:
    run = oomd("replay", "-C", write_config(tmp_path / "a.json"), str(incident))
    assert run.returncode == 0, run.stderr
    kills = [line for line in run.stdout.splitlines() if line.startswith("tick ")]
    assert len(kills) == 2 and "workload.slice/b.service" in kills[0]
    assert kills[0].endswith(
        "ruleset:[protect] detectorgroup:[pressure] killer:(dry)kill_by_memory_size_or_growth v2"
    )
    assert 'Picked "workload.slice/b.service"' in run.stdout
    assert run.stdout.count("recorded at tick") == 2


def test_compare_says_who_kills_first(incident: Path, tmp_path: Path) -> None:
    early = write_config(tmp_path / "early.json", threshold=30, duration=0)
    late = write_config(tmp_path / "late.json", threshold=50, duration=2)
    never = write_config(tmp_path / "never.json", threshold=99, duration=0)
    run = oomd("replay", "-C", early, str(incident), "--compare", late, "-q")
    assert run.returncode == 0, run.stderr
    comparison = run.stdout.split("== comparison\n")[1].splitlines()
    assert comparison[0].startswith("kill 1: A kills workload.slice/b.service at ")
    assert " s before B; the same victim" in comparison[0]
    run = oomd("replay", "-C", late, str(incident), "--compare", never, "-q")
    assert "; B never does" in run.stdout.split("== comparison\n")[1]


def test_a_damaged_trace_is_a_clear_error(incident: Path, tmp_path: Path) -> None:
    config = write_config(tmp_path / "a.json")
    truncated = tmp_path / "truncated.oomd-trace"
    data = incident.read_bytes()
    truncated.write_bytes(data[: len(data) // 2])
    not_sqlite = tmp_path / "text.oomd-trace"
    not_sqlite.write_text("hello\n")
    other = tmp_path / "other.sqlite"
    sqlite3.connect(other).execute("CREATE TABLE t (x)").connection.commit()
    newer = tmp_path / "newer.oomd-trace"
    shutil.copy(incident, newer)
    with sqlite3.connect(newer) as db:
        db.execute("UPDATE meta SET value = '99' WHERE key = 'version'")
    cases = {
        truncated: "damaged or truncated",
        not_sqlite: "not an oomd trace",
        other: "not an oomd trace (no table meta",
        newer: "version 99 is newer than this oomd reads",
        tmp_path / "missing": "no such trace file",
    }
    for path, message in cases.items():
        for command in ("replay", "report"):
            extra = ["-o", str(tmp_path / "r.html")] if command == "report" else []
            run = oomd(command, "-C", config, str(path), *extra)
            assert run.returncode == 1, (path, run.stdout, run.stderr)
            assert message in run.stdout, (path, run.stdout)
            assert "Traceback" not in run.stderr, run.stderr


def test_report_is_one_offline_page_with_plots(incident: Path, tmp_path: Path) -> None:
    out = tmp_path / "report.html"
    run = oomd("report", "-C", write_config(tmp_path / "a.json"), str(incident), "-o", str(out))
    assert run.returncode == 0, run.stdout + run.stderr
    page = out.read_text()
    assert "<script" not in page and "http://" not in page.replace("http://www.w3.org/2000/svg", "")
    assert page.count("<svg") >= 4
    assert 'class="threshold"' in page and 'class="held"' in page and 'class="kill"' in page
    assert "workload.slice/b.service" in page
