"""Moving exec hook processes out of the daemon's own cgroup (issue 12 item 9).

A hook is a child of the daemon, so it starts in the daemon's cgroup: its memory
would be charged to oomd's cgroup and protected by whatever protects oomd
(``MemoryMin=``/``MemoryLow=`` in the unit), and the self-protection guard would make
it unkillable. Right after it starts, :func:`move_out` writes its pid into
``oomd-hooks``, a sibling of the daemon's cgroup on cgroup2 (created on demand; in
``system.slice`` for ``oomd.service``). Where that cannot be done - the daemon in the
root cgroup (which has no sibling, and whose processes nobody charges or protects),
no cgroup2, a cgroup namespace that hides the path, no permission - the hook stays
where it is and one line says why (once per daemon). :func:`release` removes the
sibling when the last hook in it has gone, so no empty cgroup is left behind.
"""

from __future__ import annotations

import errno
import os
import threading

from oomd import log
from oomd.cgroup import fs, mount

HOOKS_CGROUP = "oomd-hooks"

_lock = threading.Lock()
_fallback_logged = False


def _cgroup2_dir(pid: int, proc_root: str) -> tuple[str | None, str]:
    """The absolute cgroup2 directory of ``pid``, or None and why not."""
    data = fs.read_bytes(f"{proc_root}/{pid}/cgroup")
    if data is None:
        return None, ""  # the hook has exited already
    relative = next(
        (line[3:] for line in os.fsdecode(data).splitlines() if line.startswith("0::")), None
    )
    if relative is None:
        return None, "there is no cgroup2 hierarchy"
    mounts = mount.cgroup2_mounts(f"{proc_root}/self/mountinfo")
    if not mounts:
        return None, "cgroup2 is not mounted"
    if relative == "/":
        return None, "oomd runs in the root cgroup, which has no sibling"
    path = mounts[0].rstrip("/") + relative
    if not os.path.isfile(os.path.join(path, "cgroup.procs")):
        return None, f"its cgroup {relative} is not under {mounts[0]}"
    return path, ""


def move_out(pid: int, who: str, proc_root: str = "/proc") -> str | None:
    """Move the hook process ``pid`` (just started by the daemon) into the sibling
    ``oomd-hooks`` cgroup; the sibling's path, or None where it stays (logged once,
    naming ``who``). Never raises."""
    try:
        own, why = _cgroup2_dir(pid, proc_root)
        if own is None:
            if why:
                _stay(who, why)
            return None
        parent, name = os.path.split(own)
        if name == HOOKS_CGROUP:
            return own  # already there (the daemon itself runs in oomd-hooks)
        target = os.path.join(parent, HOOKS_CGROUP)
        with _lock:
            for attempt in (1, 2):
                try:
                    os.mkdir(target, 0o755)
                except FileExistsError:
                    pass
                try:
                    with open(os.path.join(target, "cgroup.procs"), "w") as f:
                        f.write(str(pid))
                    return target
                except FileNotFoundError:
                    if attempt == 2:  # removed again under us: give up
                        raise
        return None  # unreachable
    except OSError as e:
        if e.errno == errno.ESRCH:
            return None  # the hook has already exited: nothing to move
        _stay(who, f"cannot move it to {HOOKS_CGROUP}: {e.strerror}")
        return None


def release(target: str | None) -> None:
    """Remove the ``oomd-hooks`` cgroup if no process is left in it (a hook just
    ended); quietly keep it while another hook (or a hook's child) is still there."""
    if target is None:
        return
    with _lock:
        try:
            os.rmdir(target)
        except OSError:
            pass


def _stay(who: str, why: str) -> None:
    global _fallback_logged
    if not _fallback_logged:
        _fallback_logged = True
        log.info(f"{who} runs in oomd's own cgroup: {why} (said once)")
