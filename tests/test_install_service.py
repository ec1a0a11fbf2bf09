"""``oomd install-service``: the unit it writes (checked by ``systemd-analyze verify``),
the config and drop-in directory it installs, the links, and ``--dry-run`` writing
nothing. (The unit under a real systemd: tests/e2e/test_service.py in the guest.)"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from oomd.commands import install_service
from oomd.config.default_policy import default_policy_text
from tests.support.daemon import our_oomd

REPO = Path(__file__).resolve().parents[1]


def _install(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            *our_oomd(),
            "install-service",
            *("--unit-dir", str(tmp_path / "units")),
            *("--config-dir", str(tmp_path / "etc")),
            *("--prefix", str(tmp_path / "local")),
            *args,
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_dry_run_prints_the_unit_and_writes_nothing(tmp_path: Path) -> None:
    result = _install(tmp_path, "--dry-run")
    assert result.returncode == 0, result.stderr
    assert f"# would write {tmp_path / 'units' / 'oomd.service'}:\n" in result.stdout
    assert "\nType=notify\n" in result.stdout
    assert (
        f"# would write the built-in policy to {tmp_path / 'etc' / 'oomd.json'}\n" in result.stdout
    )
    assert list(tmp_path.iterdir()) == []


def test_install_writes_unit_config_and_dropin_dir_and_keeps_an_existing_config(
    tmp_path: Path,
) -> None:
    result = _install(tmp_path, "--", "-i", "2", "--dry-run")
    assert result.returncode == 0, result.stderr
    unit = (tmp_path / "units" / "oomd.service").read_text()
    config = tmp_path / "etc" / "oomd.json"
    assert config.read_text() == default_policy_text()
    assert (tmp_path / "etc" / "dropins").is_dir()
    exec_start = next(line for line in unit.splitlines() if line.startswith("ExecStart="))
    command = " ".join(install_service.oomd_command())
    assert exec_start == (
        f"ExecStart={command} -C {config} -w {tmp_path / 'etc' / 'dropins'} -i 2 --dry-run"
    )
    assert "daemon-reload" not in result.stdout  # a staging --unit-dir: systemd not told
    # Re-running keeps the operator's config and replaces the unit.
    config.write_text('{"rulesets": []}')
    again = _install(tmp_path)
    assert again.returncode == 0, again.stderr
    assert f"kept {config} (it exists)" in again.stdout
    assert config.read_text() == '{"rulesets": []}'
    assert "-i 2" not in (tmp_path / "units" / "oomd.service").read_text()


def test_the_unit_has_the_directives_the_service_needs(tmp_path: Path) -> None:
    unit = install_service.render_unit("/etc/oomd")
    directives = dict(
        line.split("=", 1) for line in unit.splitlines() if line and line[0].isalpha()
    )
    for key, value in {
        "Type": "notify",
        "WatchdogSec": "30s",
        "Restart": "always",
        "OOMScoreAdjust": "-1000",
        "MemoryMin": "64M",
        "MemoryLow": "64M",
        "WantedBy": "multi-user.target",
    }.items():
        assert directives[key] == value, key
    # What would stop the daemon from working (oomd(8), the unit's own comments).
    for forbidden in (
        "ProtectControlGroups",
        "ProtectKernelLogs",
        "PrivateDevices",
        "ProtectClock",
        "ProtectKernelTunables",
        "ProtectProc",
        "User",
    ):
        assert forbidden not in directives


def test_systemd_analyze_verify_accepts_the_unit(tmp_path: Path) -> None:
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is not installed (apt-get install systemd)")
    assert _install(tmp_path).returncode == 0
    unit = tmp_path / "units" / "oomd.service"
    # man:oomd(8) is resolved through MANPATH: point it at the repository's page.
    man = tmp_path / "man"
    (man / "man8").mkdir(parents=True)
    shutil.copy(REPO / "man" / "oomd.8", man / "man8" / "oomd.8")
    env = {**os.environ, "MANPATH": str(man), "SYSTEMD_LOG_LEVEL": "notice"}
    result = subprocess.run(
        [analyze, "verify", str(unit)], capture_output=True, text=True, env=env, timeout=60
    )
    # verify exits 0 on warnings (an unknown directive, a bad value): none may appear.
    assert result.returncode == 0 and result.stderr.strip() == "", result.stderr
    # ... and it does see a broken one:
    bad = tmp_path / "units" / "bad.service"
    bad.write_text(unit.read_text().replace("Restart=always", "Restart=sometimes"))
    broken = subprocess.run([analyze, "verify", str(bad)], capture_output=True, text=True, env=env)
    assert "restart specifier" in broken.stderr


def test_links_point_at_this_environment_and_never_replace_a_file(tmp_path: Path) -> None:
    prefix = tmp_path / "local"
    (prefix / "sbin").mkdir(parents=True)
    pairs = install_service.links(str(prefix))
    if not pairs:
        pytest.skip(f"{sys.prefix} has neither an oomd script nor data files")
    link, target = pairs[0]
    link.parent.mkdir(parents=True, exist_ok=True)
    assert install_service._link(link, target) == f"linked {link} -> {target}"
    assert os.readlink(link) == str(target)
    assert install_service._link(link, target) == f"kept {link} -> {target}"
    link.unlink()
    link.write_text("someone else's")
    assert "not a link" in install_service._link(link, target)
    assert link.read_text() == "someone else's"
    assert install_service.links("none") == []


def test_bad_config_dir_is_refused_with_a_message(tmp_path: Path) -> None:
    result = subprocess.run(
        [*our_oomd(), "install-service", "--config-dir", "relative", "--unit-dir", str(tmp_path)],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 2 and "--config-dir must be absolute" in result.stderr
    assert list(tmp_path.iterdir()) == []


def test_unwritable_place_is_an_error_not_a_crash(tmp_path: Path) -> None:
    blocker = tmp_path / "units"
    blocker.write_text("a file where a directory should be")
    result = _install(tmp_path)
    assert result.returncode == 1
    assert "Traceback" not in result.stderr and str(blocker) in result.stderr
