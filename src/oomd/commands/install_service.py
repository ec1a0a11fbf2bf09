"""``oomd install-service``: run oomd under systemd.

Writes ``oomd.service`` for the Python environment this command runs from (its
``oomd`` script, e.g. ``/opt/oomd/bin/oomd`` of a venv) into /etc/systemd/system, the
built-in default policy as ``/etc/oomd/oomd.json`` when no config is there yet (an
existing one is never touched), and the drop-in directory ``/etc/oomd/dropins``; then
``systemctl daemon-reload`` when systemd runs. It prints what it did and what to run
next. ``--dry-run`` prints the unit and the paths and writes nothing. Arguments after
``--`` are added to the daemon's command line (e.g. ``-- --dry-run``).

Every directive of the unit is explained in it; the hardening ones were checked one by
one against what the daemon must do: read and write cgroupfs (``cgroup.kill``,
``memory.high``, ``memory.reclaim``, ``trusted.*`` xattrs), write ``/dev/kmsg``, read
``/proc``, write ``/proc/sysrq-trigger`` (``kernel_panic``) and run the operator's
prekill hooks.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shlex
import shutil
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

from oomd import __version__

UNIT_NAME = "oomd.service"
DEFAULT_UNIT_DIR = "/etc/systemd/system"
DEFAULT_CONFIG_DIR = "/etc/oomd"
DEFAULT_PREFIX = "/usr/local"
#: The daemon pings the watchdog after every tick (-i, default 5 s).
WATCHDOG_SEC = 30

UNIT_TEMPLATE = """\
# {unit_name}: written by `oomd install-service` (oomd {version}) for {python}.
# Re-run that command to regenerate it; keep local changes in a drop-in
# (`systemctl edit oomd`), which a reinstall leaves alone. See oomd(8).
[Unit]
Description=Userspace out-of-memory killer (oomd for Python)
Documentation=man:oomd(8)

[Service]
# READY=1 after the first tick, then WATCHDOG=1 and STATUS= after every tick: a tick
# that hangs for WatchdogSec gets the daemon killed (SIGABRT) and restarted. Keep -i
# below half of it.
Type=notify
NotifyAccess=main
WatchdogSec={watchdog}s
ExecStart={exec_start}
# Never stays down: a crash or a watchdog kill restarts it (every 2 s, with no start
# limit, so a loop of failures cannot leave the host unprotected for good). Exit status
# 3 (bad config, no PSI, plugins that do not load) is not retried: it needs a fix.
Restart=always
RestartSec=2s
RestartPreventExitStatus=3
# The lock and the stats socket (`oomd -d`) live in /run/oomd.
RuntimeDirectory=oomd
UMask=0077

# Keep the killer alive and running when the host is short of memory: never the
# kernel OOM killer's victim, 64M of its memory protected from reclaim (as upstream's
# production guide and systemd-oomd), and scheduled ahead of the workload.
OOMScoreAdjust=-1000
MemoryMin=64M
MemoryLow=64M
Nice=-10
CPUWeight=1000

# Hardening that leaves the daemon working:
NoNewPrivileges=yes
# /usr, /boot and /etc read-only ("strict" would also close /var, where prekill hooks
# may write heap dumps); /home read-only (--plugin-dir may live there).
ProtectSystem=full
ProtectHome=read-only
ProtectKernelModules=yes
ProtectHostname=yes
RestrictRealtime=yes
RestrictSUIDSGID=yes
RestrictNamespaces=yes
LockPersonality=yes
SystemCallArchitectures=native
# Left out on purpose (each would break something):
#  User=, DynamicUser=, CapabilityBoundingSet=: trusted.* xattrs need CAP_SYS_ADMIN,
#    killing any process CAP_KILL, writing delegated cgroups CAP_DAC_OVERRIDE; little
#    is left to take away, and prekill hooks (e.g. a debugger dump) need the rest.
#  ProtectControlGroups=: cgroupfs must stay writable (cgroup.kill, memory.high, xattrs).
#  ProtectKernelTunables=: /proc/sysrq-trigger (kernel_panic) must stay writable.
#  ProtectKernelLogs=, PrivateDevices=: the kill log is written to /dev/kmsg.
#  ProtectClock=: it adds DeviceAllow=char-rtc, which closes every other device,
#    /dev/kmsg included.
#  ProtectProc=invisible, ProcSubset=pid: the daemon reads other processes' /proc and
#    /proc/pressure, /proc/meminfo, /proc/vmstat.
#  MemoryDenyWriteExecute=: ctypes (libc calls) may need writable+executable memory.
#  SystemCallFilter=: the kill path uses pidfd_open, pidfd_send_signal and
#    process_mrelease; a filter that misses one turns a kill into EPERM.
#  PrivateTmp=, PrivateNetwork=, RestrictAddressFamilies=, IPAddressDeny=: prekill
#    hooks are the operator's commands; they may use /tmp or the network.

[Install]
WantedBy=multi-user.target
"""


def oomd_command() -> list[str]:
    """How systemd starts this installation's daemon: the ``oomd`` script next to the
    interpreter (a venv's bin/), else ``python -m oomd``. The interpreter path is kept
    as it is (a venv's bin/python3 is a symlink that must not be resolved)."""
    python = os.path.abspath(sys.executable)
    script = os.path.join(os.path.dirname(python), "oomd")
    if os.access(script, os.X_OK):
        return [script]
    return [python, "-m", "oomd"]


def render_unit(config_dir: str, extra_args: Sequence[str] = ()) -> str:
    argv = [
        *oomd_command(),
        *("-C", os.path.join(config_dir, "oomd.json")),
        *("-w", os.path.join(config_dir, "dropins")),
        *extra_args,
    ]
    return UNIT_TEMPLATE.format(
        unit_name=UNIT_NAME,
        version=__version__,
        python=os.path.abspath(sys.executable),
        watchdog=WATCHDOG_SEC,
        exec_start=_systemd_quote(argv),
    )


def _systemd_quote(argv: Sequence[str]) -> str:
    """A command line as systemd's ExecStart= reads it: shell-like quoting, and ``%``
    and ``$`` escaped (systemd would expand specifiers and variables)."""
    return " ".join(shlex.quote(a).replace("%", "%%").replace("$", "$$") for a in argv)


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="oomd install-service",
        description="Install oomd.service (systemd) for this Python environment, "
        "the default policy as CONFIG_DIR/oomd.json when absent, and CONFIG_DIR/dropins.",
        epilog="Arguments after -- are added to the daemon's command line, e.g. "
        "`oomd install-service -- --dry-run` for a service that never kills. Then: "
        "systemctl enable --now oomd.",
    )
    p.add_argument(
        "--dry-run", action="store_true", help="print the unit and the paths; write nothing"
    )
    p.add_argument(
        "--unit-dir",
        default=DEFAULT_UNIT_DIR,
        metavar="DIR",
        help=f"where oomd.service goes (default: {DEFAULT_UNIT_DIR})",
    )
    p.add_argument(
        "--prefix",
        default=DEFAULT_PREFIX,
        metavar="DIR",
        help="link oomd (sbin/), the man page and the bash completion under DIR where "
        f"nothing else is there (default: {DEFAULT_PREFIX}; 'none': no links)",
    )
    p.add_argument(
        "--config-dir",
        default=DEFAULT_CONFIG_DIR,
        metavar="DIR",
        help=f"where oomd.json and dropins/ are (default: {DEFAULT_CONFIG_DIR})",
    )
    return p


def main(argv: Sequence[str]) -> int:
    args = list(argv)
    extra: list[str] = []
    if "--" in args:
        cut = args.index("--")
        args, extra = args[:cut], args[cut + 1 :]
    opts = _parser().parse_args(args)
    if not os.path.isabs(opts.config_dir):
        print(
            f"oomd install-service: --config-dir must be absolute: {opts.config_dir}",
            file=sys.stderr,
        )
        return 2
    unit = render_unit(opts.config_dir, extra)
    unit_path = Path(opts.unit_dir) / UNIT_NAME
    config_path = Path(opts.config_dir) / "oomd.json"
    dropin_dir = Path(opts.config_dir) / "dropins"
    if opts.dry_run:
        what = "would keep" if config_path.exists() else "would write the built-in policy to"
        text = f"# would write {unit_path}:\n{unit}# {what} {config_path}\n"
        text += f"# would create {dropin_dir}\n"
        text += "".join(f"# would link {link} -> {target}\n" for link, target in links(opts.prefix))
        if opts.unit_dir == DEFAULT_UNIT_DIR:
            text += "# would run systemctl daemon-reload\n"
        with contextlib.suppress(BrokenPipeError):
            sys.stdout.write(text)
            sys.stdout.flush()
        return 0
    from oomd.config.default_policy import default_policy_text
    from oomd.config.errors import ConfigError

    try:
        policy = None if config_path.exists() else default_policy_text()
    except ConfigError as e:
        print(f"oomd install-service: {e}", file=sys.stderr)
        return 1
    try:
        _write(unit_path, unit)
        print(f"wrote {unit_path}")
        if policy is None:
            print(f"kept {config_path} (it exists)")
        else:
            _write(config_path, policy)
            print(f"wrote {config_path} (the built-in policy; see oomd --print-default-config)")
        dropin_dir.mkdir(mode=0o755, parents=True, exist_ok=True)
        print(f"created {dropin_dir}")
        for link, target in links(opts.prefix):
            print(_link(link, target))
    except OSError as e:
        print(f"oomd install-service: {e.filename}: {e.strerror}", file=sys.stderr)
        if isinstance(e, PermissionError):
            print("oomd install-service: run it as root (sudo)", file=sys.stderr)
        return 1
    # Only for the unit directory systemd reads; another --unit-dir is for staging.
    if (
        opts.unit_dir == DEFAULT_UNIT_DIR
        and os.path.isdir("/run/systemd/system")
        and shutil.which("systemctl")
    ):
        reload = subprocess.run(["systemctl", "daemon-reload"], check=False)
        print("ran systemctl daemon-reload" + ("" if reload.returncode == 0 else " (failed)"))
        if reload.returncode != 0:
            return 1
    print("next: systemctl enable --now oomd   (status: systemctl status oomd)")
    return 0


def links(prefix: str) -> list[tuple[Path, Path]]:
    """(link, target) pairs that put this environment's ``oomd``, man page and bash
    completion where root's shell, man(1) and bash-completion look; targets that this
    installation does not have are left out."""
    if prefix == "none":
        return []
    env = Path(sys.prefix)
    pairs = [
        (Path(prefix, "share/man/man8/oomd.8"), env / "share/man/man8/oomd.8"),
        (
            Path(prefix, "share/bash-completion/completions/oomd"),
            env / "share/bash-completion/completions/oomd",
        ),
    ]
    command = oomd_command()
    if len(command) == 1:
        pairs.insert(0, (Path(prefix, "sbin/oomd"), Path(command[0])))
    return [(link, target) for link, target in pairs if target.exists()]


def _link(link: Path, target: Path) -> str:
    """Make ``link`` point at ``target`` unless something that is not a symlink is
    there; says what it did."""
    if link.is_symlink():
        if Path(os.readlink(link)) == target:
            return f"kept {link} -> {target}"
        link.unlink()
    elif link.exists():
        return f"kept {link} (not a link: not replaced by one to {target})"
    link.parent.mkdir(mode=0o755, parents=True, exist_ok=True)
    link.symlink_to(target)
    return f"linked {link} -> {target}"


def _write(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` (mode 0644) atomically: a reader never sees half."""
    path.parent.mkdir(mode=0o755, parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o644)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(text)
    os.replace(tmp, path)
