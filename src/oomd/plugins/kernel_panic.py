"""``kernel_panic``: crashes the kernel on purpose by writing ``c`` to
``/proc/sysrq-trigger`` (for hosts where a panic and reboot beat a livelock). Takes no
args. Returns STOP once the write succeeded (should the machine survive it) and
CONTINUE, after a log line, when the file cannot be opened or written.

Upstream has the plugin in its source tree but not in its meson build (so Debian's
binary lacks it); it is built in here. Deliberate difference: under ``--dry-run`` it
only logs what it would do, and returns STOP.

The target file is the host's (``env.host.sysrq_trigger``: ``/proc/sysrq-trigger`` in
the daemon); the test suite's hosts point it into a scratch directory, and a host not
built with ``may_panic`` (the default of a bare ``PluginEnv``) refuses, so no test can
panic the machine.
"""

from __future__ import annotations

import os

from oomd.plugin import Action, OomdContext, PluginRet, log
from oomd.typeshim import TYPE_CHECKING

if TYPE_CHECKING:
    from typing import Any


def trigger_crash(path: str) -> str | None:
    """Write ``c`` to ``path``; None on success, else upstream's failure message."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CLOEXEC)
    except OSError:
        return f"Failed to open {path}"
    try:
        written = os.write(fd, b"c")
    except OSError:
        written = -1
    finally:
        os.close(fd)
    return None if written == 1 else "Failed to trigger kernel panic"


class KernelPanic(Action):
    name = "kernel_panic"

    def target(self) -> str:
        return self.env.host.sysrq_trigger

    def explain(self, ctx: OomdContext) -> dict[str, Any]:
        return {
            "description": f"panics the kernel (writes 'c' to {self.target()})",
            "dry": self.env.dry_run,
        }

    def run(self, ctx: OomdContext) -> PluginRet:
        path = self.target()
        if self.env.dry_run:
            log.always(f"dry run: not writing 'c' to {path} (would panic the kernel)")
            return PluginRet.STOP
        if not self.env.host.may_panic:
            log.always(f"Not writing 'c' to {path}: this plugin's host may not panic the kernel")
            return PluginRet.CONTINUE
        log.always(f"Triggering a kernel panic through {path}")
        failure = trigger_crash(path)
        if failure is not None:
            log.info(failure)
            return PluginRet.CONTINUE
        return PluginRet.STOP
