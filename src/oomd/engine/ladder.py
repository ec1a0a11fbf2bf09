"""The kill ladder: a gentler first signal, then SIGKILL (issue 17).

With ``kill_signal: "SIGTERM"`` and ``grace_period: N`` a kill plugin sends SIGTERM to
the victim's processes (through pidfds, as the SIGKILL path does), writes the kill
line once, and returns ASYNC: its ruleset's action chain waits while the daemon keeps
ticking. On each later tick :func:`tick` looks again:

* the victim is gone (empty, removed, or re-created: another inode), or, for
  ``kill_mode: "largest_process"``, its process exited: done, nothing more is sent;
* the grace period is over: whatever is left gets SIGKILL (``cgroup.kill`` where the
  kernel has it), with a second log line and an ``oomd escalate:`` kmsg line;
* earlier, when memory pressure keeps rising: the victim's or the host's memory
  ``some avg10`` has risen on :data:`RISING_TICKS` ticks in a row and stands at least
  :data:`PRESSURE_RISE` points above its value at the first signal. The victim is not
  freeing memory fast enough (or something else is making things worse), and waiting
  out the grace period would only lengthen the stall.

The pending ladder is kept in the ``trusted.oomd_ladder`` xattr of the victim cgroup
(``SIGNAL DEADLINE_EPOCH UUID PID``), so a daemon restarted during the grace period
resumes it instead of signalling again, and never touches a re-created cgroup (a new
directory has no such xattr). :class:`Ladder` itself is a pure state machine on a
clock the caller passes in.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable, Sequence
from enum import Enum

from oomd import log, stats
from oomd.cgroup import fs
from oomd.cgroup.context import CgroupContext, OomdContext
from oomd.cgroup.fs import ZERO_PRESSURE
from oomd.cgroup.path import CgroupPattern, parse_pattern_list
from oomd.engine.plugin import PluginEnv
from oomd.kill import (
    KillReport,
    new_kill_uuid,
    read_pids,
    record_kill_done,
    record_kill_start,
    walk,
)
from oomd.typeshim import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from typing import ClassVar

LADDER_XATTR = "trusted.oomd_ladder"
#: Escalate before the grace period ends when a memory pressure (victim's or host's
#: ``some avg10``) stands this many points above its value at the first signal ...
PRESSURE_RISE = 10.0
#: ... and has risen on this many consecutive ticks.
RISING_TICKS = 3
#: Signals a ladder may start with (SIGKILL means no ladder).
SIGNALS = ("SIGTERM", "SIGINT", "SIGHUP", "SIGQUIT", "SIGUSR1", "SIGUSR2", "SIGKILL")
ESCALATIONS = "oomd.kill_escalations"


SIGKILL = "SIGKILL"


def parse_signal(value: str, env: PluginEnv) -> str:
    """``SIGTERM``, ``TERM`` or a number, for the signals in :data:`SIGNALS`; the
    signal's name."""
    text = value.strip().upper()
    if text.isdigit():
        try:
            text = signal.Signals(int(text)).name
        except ValueError:
            text = value
    elif not text.startswith("SIG"):
        text = "SIG" + text
    if text not in SIGNALS:
        raise ValueError(f"expected one of {', '.join(SIGNALS)}, not {value!r}")
    return text


def signum(name: str) -> int:
    return int(signal.Signals[name])


def parse_cgroup_list(values: Sequence[str], env: PluginEnv) -> tuple[CgroupPattern, ...]:
    """A JSON array of cgroup patterns (each may itself be comma-separated)."""
    return tuple(p for value in values for p in parse_pattern_list(env.cgroup_fs, value))


def check_args(sig: str, grace: float, error: Callable[[str, str], Exception]) -> None:
    """Cross-argument checks of ``kill_signal`` and ``grace_period``."""
    if sig == SIGKILL and grace > 0:
        raise error(
            "grace_period",
            'grace_period needs a gentler kill_signal (e.g. "SIGTERM"): SIGKILL cannot be '
            "caught, so there is nothing to wait for",
        )
    if sig != SIGKILL and grace <= 0:
        raise error(
            "grace_period",
            f"kill_signal {sig} needs a grace_period > 0 (seconds to wait before SIGKILL)",
        )


class Step(Enum):
    WAIT = "wait"
    EXITED = "exited"
    ESCALATE = "escalate"


class Ladder:
    """One victim between its first signal and SIGKILL (or its exit)."""

    __slots__ = (
        "_baseline",
        "_last",
        "_rising",
        "deadline",
        "grace",
        "inode",
        "path",
        "pid",
        "sig",
        "signalled",
        "started",
        "uuid",
    )

    def __init__(
        self,
        path: str,
        inode: int,
        sig: int,
        grace: float,
        started: float,
        uuid: str,
        pid: int = 0,
        deadline: float | None = None,
    ) -> None:
        self.path = path
        self.inode = inode
        self.sig = sig
        self.grace = grace
        self.started = started
        self.uuid = uuid
        #: For ``kill_mode: "largest_process"``: the one process signalled (0: the
        #: whole cgroup).
        self.pid = pid
        self.deadline = started + grace if deadline is None else deadline
        #: The pids the first signal reached (for the ``oomd_kill`` count).
        self.signalled: list[int] = []
        self._baseline: list[float | None] = [None, None]
        self._last: list[float | None] = [None, None]
        self._rising = [0, 0]

    def __repr__(self) -> str:
        return f"Ladder({self.path!r}, pid={self.pid}, deadline={self.deadline})"

    def step(
        self, now: float, present: bool, victim_pressure: float | None, host_pressure: float | None
    ) -> tuple[Step, str]:
        """What to do this tick: WAIT, EXITED (done) or ESCALATE (with the reason).
        ``present``: the victim (process or cgroup with processes, same inode) is
        still there; pressures: memory ``some avg10`` now (None: unreadable)."""
        if not present:
            return Step.EXITED, f"exited {now - self.started:.1f}s after {self.signal_name}"
        if now >= self.deadline:
            return Step.ESCALATE, f"still there after its {self.grace:g}s grace period"
        for index, (what, value) in enumerate(
            (("its", victim_pressure), ("the host's", host_pressure))
        ):
            if value is None:
                continue
            base, last = self._baseline[index], self._last[index]
            if base is None:
                self._baseline[index] = base = value
            self._rising[index] = (
                self._rising[index] + 1 if last is not None and value > last else 0
            )
            self._last[index] = value
            if self._rising[index] >= RISING_TICKS and value - base >= PRESSURE_RISE:
                return Step.ESCALATE, (
                    f"{what} memory pressure kept rising ({base:.2f} -> {value:.2f}) "
                    f"{now - self.started:.1f}s into its {self.grace:g}s grace period"
                )
        return Step.WAIT, ""

    def set_baseline(self, victim_pressure: float | None, host_pressure: float | None) -> None:
        self._baseline = [victim_pressure, host_pressure]
        self._last = [victim_pressure, host_pressure]

    @property
    def signal_name(self) -> str:
        return signal.Signals(self.sig).name

    # -- persistence ----------------------------------------------------------------

    def encode(self, now: float, wall: float) -> str:
        return f"{self.signal_name} {wall + (self.deadline - now):.3f} {self.uuid} {self.pid}"

    @staticmethod
    def decode(text: str, path: str, inode: int, now: float, wall: float) -> Ladder | None:
        """A ladder from its xattr value (None for garbage). Its deadline is moved onto
        ``now``'s clock; its grace period is what was left of it."""
        fields = text.split()
        if len(fields) != 4 or fields[0] not in SIGNALS or not fields[3].isdigit():
            return None
        try:
            deadline_wall = float(fields[1])
        except ValueError:
            return None
        left = deadline_wall - wall
        return Ladder(
            path,
            inode,
            int(signal.Signals[fields[0]]),
            max(left, 0.0),
            now,
            fields[2],
            pid=int(fields[3]),
            deadline=now + left,
        )


# -- driving a ladder from a kill plugin --------------------------------------------


class LadderOwner(Protocol):
    """What the ladder needs of its kill plugin (``oomd.engine.kill_base.KillPlugin``)."""

    name: ClassVar[str]
    env: PluginEnv
    kill_signal: str
    grace_period: float
    kernelkill: bool
    reap_memory: bool
    kill_mode: str

    @property
    def is_dry(self) -> bool: ...


def kill_line(ctx: OomdContext, cg: CgroupContext, killer: str, dry: bool) -> str:
    """Upstream's kill line (what ``KillPlugin.kill_and_log`` writes)."""
    p = cg.mem_pressure() or ZERO_PRESSURE
    action = ctx.action_context
    return (
        f"{p.avg10:.2f} {p.avg60:.2f} {p.avg300:.2f} {cg.path.relative} {cg.current_usage() or 0} "
        f"ruleset:[{action.ruleset_name}] detectorgroup:[{action.detector_group}] "
        f"killer:{'(dry)' if dry else ''}{killer} v2"
    )


def _call(owner: LadderOwner, method: str) -> Callable[..., KillReport] | None:
    fn: Callable[..., KillReport] | None = getattr(owner.env.host.killer, method, None)
    return fn


def _pressures(ctx: OomdContext, path: str) -> tuple[float | None, float | None]:
    data = fs.read_bytes(path + "/memory.pressure")
    victim = fs.parse_pressure(data, False) if data is not None else None
    host = ctx.system.pressure("memory", False)
    return (
        None if victim is None else victim.avg10,
        None if host is None else host.avg10,
    )


def _present(ladder: Ladder) -> bool:
    try:
        if os.stat(ladder.path).st_ino != ladder.inode:
            return False
    except OSError:
        return False
    if ladder.pid:
        return ladder.pid in _pids_below(ladder.path)
    data = fs.read_bytes(ladder.path + "/cgroup.events")
    return data is not None and fs.parse_populated(data) is not False


def _pids_below(path: str) -> set[int]:
    return {pid for d in walk(path) for pid in read_pids(d) or ()}


def _save(ladder: Ladder | None, path: str, now: float) -> None:
    try:
        if ladder is None:
            os.removexattr(path, LADDER_XATTR)
        else:
            os.setxattr(path, LADDER_XATTR, ladder.encode(now, time.time()).encode())
    except OSError:
        pass


def resume(owner: LadderOwner, ctx: OomdContext, cg: CgroupContext) -> Ladder | None:
    """The ladder a previous daemon left pending on ``cg`` (its xattr), or None."""
    names = cg.xattr_names()
    if names is None or LADDER_XATTR not in names:
        return None
    try:
        text = os.getxattr(cg.path.absolute, LADDER_XATTR).decode(errors="replace")
    except OSError:
        return None
    ladder = Ladder.decode(text, cg.path.absolute, cg.inode, ctx.now(), time.time())
    if ladder is None:
        log.info(f"Ignoring a garbled {LADDER_XATTR} on {cg.path.absolute}: {text!r}")
        return None
    log.info(
        f"Resuming the kill ladder on {cg.path.absolute} begun before a restart: "
        f"{ladder.signal_name} sent, SIGKILL in {max(ladder.deadline - ctx.now(), 0):.1f}s"
    )
    return ladder


def start(owner: LadderOwner, ctx: OomdContext, cg: CgroupContext) -> Ladder | bool:
    """Send the first signal to ``cg`` (or its largest process) and write the kill
    line. Returns the ladder to tick, True when it is all done already (a dry run, a
    SIGKILL of the largest process), False when nothing was signalled."""
    path = cg.path.absolute
    rel = cg.path.relative
    dry = owner.is_dry
    gentle = owner.kill_signal != SIGKILL
    name = owner.kill_signal
    largest = owner.kill_mode == "largest_process" and not cg.oom_group()
    target: tuple[int, str, int] | None = None
    if largest:
        find: Callable[[str], tuple[int, str, int] | None] | None = getattr(
            owner.env.host.killer, "largest_process", None
        )
        target = find(path) if find is not None else None
        if target is None:
            log.info(f"No process to kill in {path}")
            return False
    what = f"process {target[0]} ({target[2] >> 20}MB RSS+swap) of {path}" if target else path
    then = f", SIGKILL after {owner.grace_period:g}s if still there" if gentle else ""
    if dry:
        log.info(f"OOMD: In dry-run mode; would have sent {name} to {what}{then}")
        owner.env.kmsg.write(kill_line(ctx, cg, owner.name, True), "oomd kill")
        return True
    log.info(f"Trying to kill {what} with {name}{then}")
    uuid = new_kill_uuid()
    record_kill_start(path, uuid)
    if target is not None:
        send = _call(owner, "signal_process")
        report = (
            send(path, target[0], signum(name))
            if send is not None
            else KillReport(error="this killer cannot signal one process")
        )
    else:
        send = _call(owner, "signal")
        report = (
            send(path, signum(name))
            if send is not None
            else KillReport(error=f"this killer cannot send {name}")
        )
    if report.error is not None or report.killed == 0:
        log.info(f"Failed to kill cgroup {rel}: {report.error or 'no process was signalled'}")
        return False
    record_kill_done(path, report.killed)
    owner.env.stats.increment(stats.KILLS)
    owner.env.kmsg.write(kill_line(ctx, cg, owner.name, False), "oomd kill")
    if not gentle:
        return True
    ladder = Ladder(
        path,
        cg.inode,
        signum(name),
        owner.grace_period,
        ctx.now(),
        uuid,
        pid=target[0] if target else 0,
    )
    ladder.signalled = list(report.pids)
    ladder.set_baseline(*_pressures(ctx, path))
    _save(ladder, path, ctx.now())
    return ladder


def tick(owner: LadderOwner, ctx: OomdContext, ladder: Ladder) -> Step:
    """One tick of a pending ladder: WAIT (call again next tick), or EXITED/ESCALATE
    when it is over (escalation done here)."""
    present = _present(ladder)
    victim, host = _pressures(ctx, ladder.path) if present else (None, None)
    step, reason = ladder.step(ctx.now(), present, victim, host)
    what = f"process {ladder.pid} of {ladder.path}" if ladder.pid else ladder.path
    if step is Step.WAIT:
        return step
    if step is Step.EXITED:
        log.info(f"Kill ladder done: {what} {reason}; no SIGKILL needed")
        if os.path.isdir(ladder.path):
            _save(None, ladder.path, ctx.now())
        return step
    log.info(f"Escalating to SIGKILL: {what} is {reason}")
    if owner.is_dry:  # a ladder never starts dry; a reload may have made it so
        log.info(f"OOMD: In dry-run mode; would have sent SIGKILL to {what}")
        return step
    if ladder.pid:
        send = _call(owner, "signal_process")
        report = (
            send(ladder.path, ladder.pid, signal.SIGKILL)
            if send is not None
            else KillReport(error="this killer cannot signal one process")
        )
    else:
        report = owner.env.host.killer.kill(
            ladder.path, freeze=owner.kernelkill, reap=owner.reap_memory
        )
    _save(None, ladder.path, ctx.now())
    if report.error is not None:
        log.info(f"Failed to escalate the kill of {what}: {report.error}")
        return step
    new = [p for p in report.pids if p not in ladder.signalled]
    if new:
        record_kill_done(ladder.path, len(new))
    owner.env.stats.increment(ESCALATIONS)
    rel = ladder.path[len(ctx.cgroup_fs.rstrip("/")) + 1 :] if ladder.path != ctx.cgroup_fs else ""
    owner.env.kmsg.write(
        f"{rel} SIGKILL after {ctx.now() - ladder.started:.1f}s of {ladder.grace:g}s grace "
        f"({reason}) killed:{report.killed} uuid:{ladder.uuid} killer:{owner.name}",
        "oomd escalate",
    )
    return step
