"""Built-in prekill hooks: upstream's ``dummy_prekill_hook`` and our ``exec`` hook.

``exec_prekill_hook`` runs a command (an argv list, never through a shell) before the
kill, with the victim and the ruleset in its environment: ``OOMD_CGROUP`` (path
relative to the cgroup fs), ``OOMD_CGROUP_PATH`` (absolute), ``OOMD_RULESET``,
``OOMD_DETECTOR_GROUP`` and ``OOMD_KILL_UUID``. Its output is logged line by line as
it arrives; if it outlives the ruleset's ``prekill_hook_timeout`` window, its whole
process group is killed and the kill goes ahead. It runs with ``oom_score_adj`` 0 and,
where cgroup2 allows, in the ``oomd-hooks`` sibling of the daemon's cgroup
(:mod:`oomd.cgroup.hookcg`), so oomd's protection does not cover it.
"""

from __future__ import annotations

import contextlib
import os
import shlex
import signal
import subprocess
from collections.abc import Mapping, Sequence

from oomd import log
from oomd.cgroup import hookcg
from oomd.cgroup.context import ActionContext, CgroupContext
from oomd.engine.plugin import ArgError, PluginEnv, arg
from oomd.engine.prekill import PrekillHook, PrekillHookInvocation


class _Done:
    def finished(self) -> bool:
        return True

    def abandon(self) -> None:
        pass


class DummyPrekillHook(PrekillHook):
    """Logs and finishes at once (upstream's test hook)."""

    name = "dummy_prekill_hook"

    def fire(self, cg: CgroupContext, action: ActionContext) -> PrekillHookInvocation:
        log.info(f"Prekill hook fired on {cg.path.relative}")
        return _Done()


def _parse_argv(value: str, env: PluginEnv) -> tuple[str, ...]:
    argv = tuple(shlex.split(value))
    if not argv:
        raise ValueError("must name a command")
    return argv


def _parse_argv_list(value: Sequence[str], env: PluginEnv) -> tuple[str, ...]:
    if not value or not value[0]:
        raise ValueError("must name a command")
    return tuple(value)


class _Running:
    """A hook process: output drained without blocking, killed on abandon."""

    def __init__(self, hook: str, proc: subprocess.Popen[bytes], cgroup: str | None = None) -> None:
        self.hook = hook
        self.proc = proc
        self.cgroup = cgroup
        self._buffer = b""
        assert proc.stdout is not None
        os.set_blocking(proc.stdout.fileno(), False)

    def _drain(self, final: bool = False) -> None:
        stdout = self.proc.stdout
        if stdout is None:
            return
        while True:
            try:
                chunk = os.read(stdout.fileno(), 65536)
            except BlockingIOError:
                break
            except OSError:
                chunk = b""
            if not chunk:
                final = True
                break
            self._buffer += chunk
        *lines, self._buffer = self._buffer.split(b"\n")
        if final and self._buffer:
            lines.append(self._buffer)
            self._buffer = b""
        for line in lines:
            log.info(f"Prekill hook {self.hook} [{self.proc.pid}]: {line.decode(errors='replace')}")

    def finished(self) -> bool:
        self._drain()
        code = self.proc.poll()
        if code is None:
            return False
        self._drain(final=True)
        self._close()
        log.info(f"Prekill hook {self.hook} [{self.proc.pid}] exited with status {code}")
        return True

    def abandon(self) -> None:
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
            log.info(
                f"Prekill hook {self.hook} [{self.proc.pid}] killed: it ran past the prekill hook timeout"
            )
        self._drain(final=True)
        self._close()

    def _close(self) -> None:
        if self.proc.stdout is not None:
            self.proc.stdout.close()
        hookcg.release(self.cgroup)


def _env_value(text: str) -> bytes:
    """An environment value for any name: a NUL (which no environment can hold) is
    written ``\\x00`` and a lone surrogate that is not an escaped byte ``\\udfff``."""
    return text.replace("\x00", "\\x00").encode(
        "utf-8", "surrogateescape" if _escaped_only(text) else "backslashreplace"
    )


def _escaped_only(text: str) -> bool:
    try:
        text.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        return False
    return True


def _normal_oom_score(pid: int, who: str = "Prekill hook") -> None:
    """The hook must not inherit the daemon's -1000 (never the kernel OOM killer's
    pick): set it to 0 from here, just after the start (raising a score needs no
    privilege). The hook runs its first instants with the daemon's score."""
    try:
        fd = os.open(f"/proc/{pid}/oom_score_adj", os.O_WRONLY | os.O_CLOEXEC)
    except OSError:
        return
    try:
        os.write(fd, b"0")
    except OSError as e:
        log.info(f"{who} [{pid}]: cannot set oom_score_adj to 0 ({e.strerror})")
    finally:
        os.close(fd)


def start_hook(
    who: str, argv: Sequence[str], values: Mapping[str, str], move: bool = True
) -> tuple[subprocess.Popen[bytes], str | None] | None:
    """Start an exec hook (pre- or post-kill): ``argv`` in a session of its own, its
    output piped, ``values`` added to the daemon's environment (any text: NULs and
    lone surrogates escaped), ``oom_score_adj`` 0 and, if ``move``, out of the
    daemon's cgroup (:mod:`oomd.cgroup.hookcg`). Returns the process and the cgroup it
    was moved to, or None (logged) when it could not start."""
    env: dict[str, str | bytes] = dict(os.environ)
    env.update({name: _env_value(value) for name, value in values.items()})
    try:
        proc = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
        )
    except OSError as e:
        log.always(f"{who} could not run {argv[0]}: {e.strerror}")
        return None
    except ValueError as e:  # a NUL in argv
        log.always(f"{who} could not run {argv[0]!r}: {e}")
        return None
    _normal_oom_score(proc.pid, who)
    moved = hookcg.move_out(proc.pid, f"{who} [{proc.pid}]") if move else None
    return proc, moved


class ExecPrekillHook(PrekillHook):
    """Runs a command before the kill (our addition; upstream ships only a dummy)."""

    name = "exec_prekill_hook"
    argv: tuple[str, ...] = arg(_parse_argv, required=True, parse_list=_parse_argv_list)

    def setup(self) -> None:
        if not self.cgroup and not self.xattr:
            raise ArgError("cgroup", 'Required arg "cgroup" missing (or give "xattr")')

    def fire(self, cg: CgroupContext, action: ActionContext) -> PrekillHookInvocation:
        started = start_hook(
            f"Prekill hook {self.name}",
            self.argv,
            {
                "OOMD_CGROUP": cg.path.relative,
                "OOMD_CGROUP_PATH": cg.path.absolute,
                "OOMD_RULESET": action.ruleset_name,
                "OOMD_DETECTOR_GROUP": action.detector_group,
                "OOMD_KILL_UUID": action.kill_uuid,
            },
            move=not self.env.dry_run,
        )
        if started is None:
            return _Done()
        proc, moved = started
        log.info(
            f"Prekill hook {self.name} [{proc.pid}] started for {cg.path.relative}: {shlex.join(self.argv)}"
        )
        return _Running(self.name, proc, moved)
