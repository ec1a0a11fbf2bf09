"""Exec hooks leave the daemon's cgroup (issue 12 item 9): on the host's real cgroup2
mount, a hook runner (the engine with an exec prekill and an exec postkill hook) runs
in a test cgroup ``T/daemon``; each hook must be found in ``T/oomd-hooks``, and the
sibling removed once both are done. Where moving is impossible the hook stays and one
line says why."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from oomd.cgroup import hookcg
from tests.support.real_cgroups import cgroup2_root, real_cgroup

REPO = Path(__file__).resolve().parent.parent

#: The hook runner: the engine (fake tree, dry kill) with both exec hooks, each of
#: which writes its pid and waits for its ``.go`` file; prints a JSON summary.
RUNNER = r"""
import json, sys, time
from pathlib import Path
from oomd import events
from tests.support.harness import Harness, plugin
from tests.support.tree import FakeProc, FakeTree

work = Path(sys.argv[1])
h = Harness(FakeTree(work / "cgroup"), FakeProc(work / "proc"))
h.tree.cgroup("workload.slice/big", current=300 << 20, stat={"anon": 1})
def hook(kind):
    wait = f"while [ ! -e {work}/{kind}.go ]; do sleep 0.05; done"
    return {"name": f"exec_{kind}_hook", "args": {"cgroup": "workload.slice/*",
            "argv": ["/bin/sh", "-c", f"echo $$ > {work}/{kind}.tmp && mv {work}/{kind}.tmp {work}/{kind}.pid; {wait}"]}}
engine = h.load({
    "rulesets": [{"name": "r", "detectors": [["g", plugin("continue")]],
                  "actions": [plugin("kill_by_memory_size_or_growth", cgroup="workload.slice/*", dry=True)],
                  "prekill_hook_timeout": 30, "post_action_delay": 100}],
    "prekill_hooks": [hook("prekill")],
    "postkill_hooks": [hook("postkill")],
})
events.subscribers.append(engine.fire_postkill_hooks)
deadline = time.monotonic() + 30
while len(h.kills) < 1 and time.monotonic() < deadline:
    h.tick(advance=0)
    time.sleep(0.05)
print(json.dumps({"kills": len(h.kills)}), flush=True)
deadline = time.monotonic() + 10
while time.monotonic() < deadline:  # the postkill hook's thread reaps it
    time.sleep(0.1)
    if not any(t.name != "MainThread" for t in __import__("threading").enumerate()):
        break
"""


def cgroup_of(pid: int) -> str:
    for line in Path(f"/proc/{pid}/cgroup").read_text().splitlines():
        if line.startswith("0::"):
            return line[3:]
    raise AssertionError(f"no cgroup2 line for {pid}")


def moved(pid: int, away_from: str, timeout: float = 20.0) -> str:
    """The cgroup of ``pid`` once it has left ``away_from`` (the daemon moves a hook
    just after starting it: its first instants are spent in the daemon's cgroup)."""
    deadline = time.monotonic() + timeout
    while (where := cgroup_of(pid)) == away_from and time.monotonic() < deadline:
        time.sleep(0.02)
    return where


def wait_for(path: Path, timeout: float = 20.0) -> int:
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert time.monotonic() < deadline, f"{path.name} never appeared"
        time.sleep(0.02)
    return int(path.read_text())


def test_exec_hooks_run_in_a_sibling_of_the_daemons_cgroup(tmp_path: Path) -> None:
    mount_point = cgroup2_root().rstrip("/")
    with real_cgroup("oomd-hookcg") as base:
        daemon_cg = base / "daemon"
        daemon_cg.mkdir()
        runner = subprocess.Popen(
            [
                "sh",
                "-c",
                f'echo $$ > "{daemon_cg}/cgroup.procs" && exec "$0" -c "$1" "$2"',
                sys.executable,
                RUNNER,
                str(tmp_path),
            ],
            cwd=REPO,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            pre = wait_for(tmp_path / "prekill.pid")
            relative = "/" + str(base.relative_to(mount_point))
            assert cgroup_of(runner.pid) == f"{relative}/daemon"
            assert moved(pre, f"{relative}/daemon") == f"{relative}/oomd-hooks"
            (tmp_path / "prekill.go").touch()  # the hook ends; the dry kill fires postkill
            post = wait_for(tmp_path / "postkill.pid")
            assert moved(post, f"{relative}/daemon") == f"{relative}/oomd-hooks"
            assert Path(f"/proc/{post}/oom_score_adj").read_text().strip() == "0"
            (tmp_path / "postkill.go").touch()
            out, err = runner.communicate(timeout=60)
        finally:
            for kind in ("prekill", "postkill"):  # let any hook still waiting end
                (tmp_path / f"{kind}.go").touch()
            if runner.poll() is None:
                runner.kill()
                runner.wait()
        assert runner.returncode == 0, err
        assert json.loads(out.splitlines()[-1]) == {"kills": 1}
        assert "runs in oomd's own cgroup" not in err
        # Both hooks gone: the sibling was removed by the last one out.
        assert not (base / "oomd-hooks").exists()


def fake_proc(tmp_path: Path, cgroup_lines: str, mount_point: str = "/sys/fs/cgroup") -> Path:
    root = tmp_path / "proc"
    (root / "42").mkdir(parents=True)
    (root / "42" / "cgroup").write_text(cgroup_lines)
    (root / "self").mkdir()
    (root / "self" / "mountinfo").write_text(
        f"30 24 0:26 / {mount_point} rw,nosuid - cgroup2 cgroup2 rw\n"
    )
    return root


@pytest.mark.parametrize(
    ("lines", "why"),
    [
        ("0::/\n", "oomd runs in the root cgroup, which has no sibling"),
        ("4:memory:/x\n", "there is no cgroup2 hierarchy"),
        ("0::/system.slice/nowhere.service\n", "is not under"),
    ],
)
def test_a_hook_that_cannot_move_stays_and_one_line_says_why(
    tmp_path: Path, oolog: Path, monkeypatch: pytest.MonkeyPatch, lines: str, why: str
) -> None:
    monkeypatch.setattr(hookcg, "_fallback_logged", False)
    root = fake_proc(tmp_path, lines, mount_point=str(tmp_path / "nomount"))
    assert hookcg.move_out(42, "Prekill hook h [42]", proc_root=str(root)) is None
    assert hookcg.move_out(42, "Prekill hook h [42]", proc_root=str(root)) is None
    text = oolog.read_text()
    assert text.count("runs in oomd's own cgroup") == 1, text
    assert "Prekill hook h [42] runs in oomd's own cgroup: " in text and why in text


def test_no_permission_to_create_the_sibling_is_a_fallback(
    tmp_path: Path, oolog: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A read-only parent (here a plain directory standing in for the mount)."""
    monkeypatch.setattr(hookcg, "_fallback_logged", False)
    mount_point = tmp_path / "cg"
    (mount_point / "oomd.service").mkdir(parents=True)
    (mount_point / "oomd.service" / "cgroup.procs").write_text("")
    root = fake_proc(tmp_path, "0::/oomd.service\n", mount_point=str(mount_point))
    mount_point.chmod(0o555)
    try:
        if os.geteuid() == 0:
            # root ignores the mode: make the sibling a file instead, so mkdir fails.
            mount_point.chmod(0o755)
            (mount_point / "oomd-hooks").write_text("")
        assert hookcg.move_out(42, "Postkill hook h [42]", proc_root=str(root)) is None
    finally:
        mount_point.chmod(0o755)
    assert "Postkill hook h [42] runs in oomd's own cgroup: cannot move it to oomd-hooks" in (
        oolog.read_text()
    )
