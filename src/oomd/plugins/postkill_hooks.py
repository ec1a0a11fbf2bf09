"""``exec_postkill_hook``: run a command after a kill (our addition).

The argv (a list, or a string split as a shell would, never run through a shell)
runs in its own session with the kill in its environment: ``OOMD_CGROUP`` (path
relative to the cgroup fs), ``OOMD_CGROUP_PATH`` (absolute), ``OOMD_RULESET``,
``OOMD_DETECTOR_GROUP``, ``OOMD_KILLER`` (the kill plugin), ``OOMD_USAGE`` (bytes, as
in the kill line), ``OOMD_KILL_UUID`` and ``OOMD_DRY`` (``1`` for a dry kill). The
tick never waits for it: a thread of its own drains its output into the log and, if
it runs longer than ``timeout`` seconds (default 30), kills its whole process group.
Like the prekill hook, it runs with ``oom_score_adj`` 0 and, where cgroup2 allows, in
the ``oomd-hooks`` sibling of the daemon's cgroup (:mod:`oomd.cgroup.hookcg`).
"""

from __future__ import annotations

import contextlib
import os
import shlex
import signal
import subprocess
import threading

from oomd import log
from oomd.cgroup import hookcg
from oomd.engine.args import parse_unsigned_int
from oomd.engine.plugin import ArgError, arg
from oomd.engine.postkill import PostkillHook
from oomd.plugins.prekill_hooks import _parse_argv, _parse_argv_list, start_hook
from oomd.typeshim import TYPE_CHECKING

if TYPE_CHECKING:
    from oomd.events import KillEvent

DEFAULT_TIMEOUT = 30


class ExecPostkillHook(PostkillHook):
    name = "exec_postkill_hook"
    argv: tuple[str, ...] = arg(_parse_argv, required=True, parse_list=_parse_argv_list)
    timeout: int = arg(parse_unsigned_int, default=DEFAULT_TIMEOUT)

    def setup(self) -> None:
        if not self.cgroup and not self.xattr:
            raise ArgError("cgroup", 'Required arg "cgroup" missing (or give "xattr")')

    def fire(self, event: KillEvent) -> None:
        started = start_hook(
            f"Postkill hook {self.name}",
            self.argv,
            {
                "OOMD_CGROUP": event.cgroup,
                "OOMD_CGROUP_PATH": event.cgroup_path,
                "OOMD_RULESET": event.ruleset,
                "OOMD_DETECTOR_GROUP": event.detector_group,
                "OOMD_KILLER": event.killer,
                "OOMD_USAGE": str(event.usage),
                "OOMD_KILL_UUID": event.kill_uuid,
                "OOMD_DRY": "1" if event.dry else "0",
            },
            move=not self.env.dry_run,
        )
        if started is None:
            return
        proc, moved = started
        log.always(
            f"Postkill hook {self.name} [{proc.pid}] started for {event.cgroup}: "
            f"{shlex.join(self.argv)}"
        )
        threading.Thread(
            target=_supervise, args=(self.name, proc, self.timeout, moved), daemon=True
        ).start()


def _supervise(
    hook: str, proc: subprocess.Popen[bytes], timeout: int, cgroup: str | None = None
) -> None:
    """Wait for the hook at most ``timeout`` s (killing its process group after),
    logging its output; runs in its own thread."""
    try:
        output, _ = proc.communicate(timeout=timeout)
        status = f"exited with status {proc.returncode}"
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
        output, _ = proc.communicate()
        status = f"killed: it ran past its timeout of {timeout}s"
    for line in output.decode(errors="replace").splitlines():
        log.always(f"Postkill hook {hook} [{proc.pid}]: {line}")
    log.always(f"Postkill hook {hook} [{proc.pid}] {status}")
    hookcg.release(cgroup)
