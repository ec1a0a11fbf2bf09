"""oomdvm: boot a throw-away qemu guest with pure cgroup2, PSI and swap, run one command
in it as root, and power it off.

Hosts whose cgroup2 mount has no memory controller (hybrid hierarchies, containers)
cannot give a userspace OOM killer real memory pressure; this guest can. It is built
from Debian packages only (the generic kernel, busybox-static, qemu) and cached outside
the repository; the host's ``/`` is its root, read-only over virtio-9p with a tmpfs
overlay, so the host's Python, venvs and checkout work in the guest unchanged.

    python3 tools/vm/oomdvm.py build            # cached: qemu, kernel, busybox
    python3 tools/vm/oomdvm.py selftest         # memory pressure + cgroup.kill, rc 0 = pass
    python3 tools/vm/oomdvm.py run -- CMD ...   # rc = CMD's rc; 124 timeout; 125 guest died

From Python: ``run_vm(cmd, ...)`` returns a :class:`Result`. Everything is bounded by
``timeout(1)`` around qemu, and qemu's process group is killed on any exception or
SIGTERM (and sent SIGTERM if the wrapper itself dies), so no qemu outlives a run.
Stdlib only; docs/testing.md describes the guest and the measured timings.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import fcntl
import hashlib
import io
import json
import lzma
import os
import platform
import re
import shlex
import shutil
import signal
import stat
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
import zlib
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
INIT_SCRIPT = HERE / "init.sh"
SELFTEST_SCRIPT = HERE / "guest_selftest.py"

#: Kernel modules the guest needs (the Debian kernel builds every virtio driver as a
#: module); their dependencies are added from each module's ``.modinfo``.
ROOT_MODULES = ("virtio_pci", "9pnet_virtio", "9p", "virtio_blk", "overlay", "zram")
#: What the roots are expected to need on Debian 6.1, so one pass over the package
#: usually finds everything; a surprise costs a second pass.
HINT_MODULES = frozenset(
    {
        *ROOT_MODULES,
        "virtio",
        "virtio_ring",
        "virtio_pci_modern_dev",
        "virtio_pci_legacy_dev",
        "9pnet",
        "netfs",
        "fscache",
        "zsmalloc",
    }
)

KERNEL_CMDLINE = (
    "console=ttyS0 panic=-1 rdinit=/init cgroup_no_v1=all "
    "systemd.unified_cgroup_hierarchy=1 psi=1 mitigations=off "
    "i8042.noaux i8042.nokbd i8042.nopnp tsc=reliable"
)

JOB_START = "oomdvm-init: job start"
JOB_EXIT = re.compile(r"oomdvm-init: job exit rc=(\d+)")
RC_TIMEOUT = 124
RC_GUEST_DIED = 125
RUNS_KEPT_S = 24 * 3600


class VMError(Exception):
    """The harness itself failed (build, missing tools): not the guest command."""


def log(msg: str) -> None:
    print(f"oomdvm: {msg}", file=sys.stderr, flush=True)


def cache_dir() -> Path:
    env = os.environ.get("OOMDVM_CACHE")
    if env:
        return Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "oomd-vm"


def can_run_here() -> str | None:
    """Why this machine can never run the guest, or None if it can (perhaps after
    installing qemu)."""
    if sys.platform != "linux":
        return "the guest needs a Linux host"
    if platform.machine() != "x86_64":
        return f"the guest is x86_64 and TCG on {platform.machine()} is not supported here"
    if shutil.which("qemu-system-x86_64") is None:
        if os.environ.get("OOMDVM_NO_APT"):
            return "qemu-system-x86_64 is not installed and OOMDVM_NO_APT is set"
        if os.geteuid() != 0 or shutil.which("apt-get") is None:
            return "qemu-system-x86_64 is not installed and cannot be (needs root and apt-get)"
    return None


# --- build -------------------------------------------------------------------------


@dataclass(frozen=True)
class Image:
    """A built guest: what ``run_vm`` boots."""

    qemu: str
    vmlinux: Path
    bzimage: Path
    initramfs: Path
    kernel_release: str


def _run(
    argv: Sequence[str], cwd: Path | None = None, env: Mapping[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(argv), check=True, text=True, capture_output=True, cwd=cwd, env=env)


def _apt(argv: Sequence[str], cwd: Path | None = None) -> str:
    """An apt command; on failure run ``apt-get update`` once and retry."""
    if os.environ.get("OOMDVM_NO_APT"):
        raise VMError(f"OOMDVM_NO_APT is set; not running: {' '.join(argv)}")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for attempt in (1, 2):
        try:
            return _run(argv, cwd=cwd, env=env).stdout
        except (subprocess.CalledProcessError, FileNotFoundError) as e:
            detail = str(getattr(e, "stderr", "") or e)
            if attempt == 2:
                raise VMError(f"{' '.join(argv)} failed: {detail.strip()[-2000:]}") from None
            log(f"{argv[0]} failed ({detail.strip().splitlines()[-1:]}); apt-get update, retry")
            with contextlib.suppress(subprocess.CalledProcessError, FileNotFoundError):
                _run(["apt-get", "update", "-qq"], env=env)
    raise AssertionError("unreachable")


def ensure_qemu() -> str:
    qemu = shutil.which("qemu-system-x86_64")
    if qemu:
        return qemu
    why = can_run_here()
    if why:
        raise VMError(why)
    log("installing qemu-system-x86 (apt-get, --no-install-recommends)")
    _apt(
        [
            *("apt-get", "install", "-y", "-qq", "--no-install-recommends"),
            *("-o", "DPkg::Lock::Timeout=120", "qemu-system-x86"),
        ]
    )
    qemu = shutil.which("qemu-system-x86_64")
    if not qemu:
        raise VMError("qemu-system-x86_64 still missing after installing qemu-system-x86")
    return qemu


def resolve_kernel_package(metapackage: str) -> str:
    """``linux-image-amd64`` -> ``linux-image-6.1.0-NN-amd64`` (a concrete package
    name is returned as is)."""
    for attempt in (1, 2):
        try:
            out = _run(["apt-cache", "depends", metapackage]).stdout
        except (subprocess.CalledProcessError, FileNotFoundError):
            out = ""
        dep = re.search(r"^\s*Depends:\s*(linux-image-\S+)", out, re.M)
        if dep:
            return dep.group(1)
        if re.search(r"^linux-image-\d", metapackage) and out.strip():
            return metapackage
        if attempt == 1:
            _apt(["apt-get", "update", "-qq"])
    raise VMError(f"cannot resolve {metapackage} with apt-cache (no package lists?)")


def apt_download(package: str, into: Path) -> Path:
    # apt's _apt user must be able to write there, or apt warns and runs unsandboxed.
    into.mkdir(parents=True, exist_ok=True)
    into.chmod(0o755)
    for old in into.glob("*.deb"):
        old.unlink()
    _apt(["apt-get", "download", "-qq", package], cwd=into)
    debs = sorted(into.glob("*.deb"))
    if len(debs) != 1:
        raise VMError(f"apt-get download {package} left {len(debs)} .deb files in {into}")
    return debs[0]


def deb_members(deb: Path) -> Iterator[tuple[tarfile.TarFile, tarfile.TarInfo]]:
    """Stream the file-system tarball of a .deb (``dpkg-deb --fsys-tarfile``)."""
    proc = subprocess.Popen(["dpkg-deb", "--fsys-tarfile", str(deb)], stdout=subprocess.PIPE)
    assert proc.stdout is not None
    try:
        with tarfile.open(fileobj=proc.stdout, mode="r|") as tar:
            for member in tar:
                yield tar, member
    finally:
        proc.stdout.close()
        if proc.wait() not in (0, -signal.SIGPIPE):
            raise VMError(f"dpkg-deb --fsys-tarfile {deb} failed")


def modinfo(ko: bytes) -> dict[str, str]:
    """The ``.modinfo`` section of an ELF64 kernel module (``key=value`` strings)."""
    if ko[:4] != b"\x7fELF" or ko[4] != 2:
        raise VMError("not an ELF64 kernel module")
    shoff = int.from_bytes(ko[0x28:0x30], "little")
    shentsize = int.from_bytes(ko[0x3A:0x3C], "little")
    shnum = int.from_bytes(ko[0x3C:0x3E], "little")
    shstrndx = int.from_bytes(ko[0x3E:0x40], "little")

    def section(i: int) -> tuple[int, int, int]:
        base = shoff + i * shentsize
        name = int.from_bytes(ko[base : base + 4], "little")
        offset = int.from_bytes(ko[base + 0x18 : base + 0x20], "little")
        size = int.from_bytes(ko[base + 0x20 : base + 0x28], "little")
        return name, offset, size

    _, str_off, _ = section(shstrndx)
    info: dict[str, str] = {}
    for i in range(shnum):
        name_off, offset, size = section(i)
        end = ko.index(b"\0", str_off + name_off)
        if ko[str_off + name_off : end] == b".modinfo":
            for entry in ko[offset : offset + size].split(b"\0"):
                key, eq, value = entry.decode(errors="replace").partition("=")
                if eq:
                    info.setdefault(key, value)
    return info


def _norm(name: str) -> str:
    return name.replace("-", "_")


def module_closure(roots: Iterable[str], depends: Mapping[str, Sequence[str]]) -> list[str]:
    """The roots and their dependencies, dependencies first (an insmod order)."""
    order: list[str] = []
    seen: set[str] = set()

    def visit(name: str, trail: tuple[str, ...]) -> None:
        if name in seen:
            return
        if name not in depends:
            raise VMError(f"kernel module {name} (needed by {' <- '.join(trail)}) not found")
        seen.add(name)
        for dep in depends[name]:
            visit(dep, (name, *trail))
        order.append(name)

    for root in roots:
        visit(root, ("guest",))
    return order


def extract_vmlinux(bzimage: bytes) -> bytes | None:
    """The uncompressed ELF kernel inside a bzImage (XZ or gzip payload), or None.

    Booting the ELF through its PVH entry point saves the ~2.5 s that the kernel's own
    XZ decompression takes under TCG."""
    if len(bzimage) < 0x250 or bzimage[0x202:0x206] != b"HdrS":
        return None
    setup_sects = bzimage[0x1F1] or 4
    payload_offset = int.from_bytes(bzimage[0x248:0x24C], "little")
    payload_length = int.from_bytes(bzimage[0x24C:0x250], "little")
    start = (setup_sects + 1) * 512 + payload_offset
    payload = bzimage[start : start + payload_length]
    try:
        if payload.startswith(b"\xfd7zXZ\x00"):
            elf = lzma.LZMADecompressor(format=lzma.FORMAT_XZ).decompress(payload)
        elif payload.startswith(b"\x1f\x8b"):
            elf = zlib.decompressobj(16 + zlib.MAX_WBITS).decompress(payload)
        else:
            return None
    except (lzma.LZMAError, zlib.error):
        return None
    return elf if elf.startswith(b"\x7fELF") else None


def _build_kernel(root: Path, package: str) -> Path:
    """Download and unpack ``package`` into ``root/kernel/<release>``; returns that dir."""
    work = root / "download"
    deb = apt_download(package, work)
    release = package.removeprefix("linux-image-")
    dest = root / "kernel" / release
    tmp = dest.with_name(dest.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    (tmp / "modules").mkdir(parents=True)
    depends: dict[str, list[str]] = {}
    kept: dict[str, bytes] = {}
    bzimage = b""

    def one_pass(keep: frozenset[str]) -> None:
        nonlocal bzimage
        for tar, member in deb_members(deb):
            name = member.name.lstrip("./")
            if not member.isfile():
                continue
            if name.startswith("boot/vmlinuz-") or name.startswith("boot/config-"):
                f = tar.extractfile(member)
                assert f is not None
                data = f.read()
                if name.startswith("boot/vmlinuz-"):
                    bzimage = data
                else:
                    (tmp / "config").write_bytes(data)
            elif name.endswith(".ko") and "/kernel/" in name:
                mod = _norm(os.path.basename(name)[:-3])
                if mod in depends and mod not in keep:
                    continue
                f = tar.extractfile(member)
                assert f is not None
                data = f.read()
                info = modinfo(data)
                depends[mod] = [_norm(d) for d in info.get("depends", "").split(",") if d]
                if mod in keep:
                    kept[mod] = data

    one_pass(HINT_MODULES)
    order = module_closure(ROOT_MODULES, depends)
    missing = frozenset(order) - kept.keys()
    if missing:
        one_pass(missing)
    if not bzimage:
        raise VMError(f"{deb.name} has no /boot/vmlinuz-*")
    for mod in order:
        (tmp / "modules" / f"{mod}.ko").write_bytes(kept[mod])
    (tmp / "modules" / "order").write_text("\n".join(order) + "\n")
    (tmp / "vmlinuz").write_bytes(bzimage)
    elf = extract_vmlinux(bzimage)
    if elf is not None:
        (tmp / "vmlinux").write_bytes(elf)
    (tmp / "package").write_text(f"{deb.name}\n")
    shutil.rmtree(dest, ignore_errors=True)
    tmp.rename(dest)
    deb.unlink()
    return dest


def _build_busybox(root: Path) -> Path:
    dest = root / "busybox"
    deb = apt_download("busybox-static", root / "download")
    for tar, member in deb_members(deb):
        if member.name.lstrip("./") == "bin/busybox":
            f = tar.extractfile(member)
            assert f is not None
            tmp = dest.with_suffix(".tmp")
            tmp.write_bytes(f.read())
            tmp.chmod(0o755)
            tmp.rename(dest)
    deb.unlink()
    if not dest.exists():
        raise VMError(f"{deb.name} has no /bin/busybox")
    return dest


class Cpio:
    """A newc cpio archive written in memory (no cpio(1), no root needed)."""

    def __init__(self) -> None:
        self.buf = io.BytesIO()
        self.ino = 1

    def add(self, name: str, mode: int, data: bytes = b"", rdev: tuple[int, int] = (0, 0)) -> None:
        fields = [self.ino, mode, 0, 0, 1, 0, len(data), 0, 0, rdev[0], rdev[1], len(name) + 1, 0]
        self.ino += 1
        self.buf.write(b"070701" + b"".join(b"%08X" % v for v in fields))
        self.buf.write(name.encode() + b"\0")
        self._pad()
        self.buf.write(data)
        self._pad()

    def _pad(self) -> None:
        self.buf.write(b"\0" * (-self.buf.tell() % 4))

    def finish(self) -> bytes:
        self.add("TRAILER!!!", 0)
        return self.buf.getvalue()


def make_initramfs(busybox: Path, modules: Path) -> bytes:
    cpio = Cpio()
    for d in ("bin", "sbin", "dev", "proc", "sys", "tmp", "newroot", "lib", "lib/modules"):
        cpio.add(d, stat.S_IFDIR | 0o755)
    for d in ("mnt", "mnt/lower", "mnt/rw", "mnt/out"):
        cpio.add(d, stat.S_IFDIR | 0o755)
    # PID 1 has no stdout/stderr without /dev/console in the initramfs.
    cpio.add("dev/console", stat.S_IFCHR | 0o600, rdev=(5, 1))
    cpio.add("bin/busybox", stat.S_IFREG | 0o755, busybox.read_bytes())
    cpio.add("init", stat.S_IFREG | 0o755, INIT_SCRIPT.read_bytes())
    for ko in sorted(modules.iterdir()):
        cpio.add(f"lib/modules/{ko.name}", stat.S_IFREG | 0o644, ko.read_bytes())
    return cpio.finish()


@contextlib.contextmanager
def _locked(root: Path) -> Iterator[None]:
    root.mkdir(parents=True, exist_ok=True)
    with open(root / "lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def build(refresh: bool = False) -> Image:
    """Make sure qemu, the kernel, busybox and the initramfs are there (cached)."""
    why = can_run_here()
    if why:
        raise VMError(why)
    root = cache_dir()
    with _locked(root):
        qemu = ensure_qemu()
        state_file = root / "kernel.json"
        state: dict[str, str] = {}
        with contextlib.suppress(OSError, ValueError):
            state = json.loads(state_file.read_text())
        metapackage = os.environ.get("OOMDVM_KERNEL_PKG", "linux-image-amd64")
        kdir = root / "kernel" / state.get("release", "-")
        if refresh or state.get("metapackage") != metapackage or not (kdir / "vmlinuz").exists():
            started = time.monotonic()
            package = resolve_kernel_package(metapackage)
            kdir = root / "kernel" / package.removeprefix("linux-image-")
            if refresh or not (kdir / "vmlinuz").exists():
                log(f"downloading {package}")
                kdir = _build_kernel(root, package)
                log(f"kernel {kdir.name} ready in {time.monotonic() - started:.1f}s")
            state = {"metapackage": metapackage, "release": kdir.name}
            state_file.write_text(json.dumps(state) + "\n")
        busybox = root / "busybox"
        if refresh or not busybox.exists():
            log("downloading busybox-static")
            _build_busybox(root)
        image = make_initramfs(busybox, kdir / "modules")
        digest = hashlib.sha256(image).hexdigest()[:16]
        initramfs = root / f"initramfs-{digest}.cpio"
        if not initramfs.exists():
            for old in root.glob("initramfs-*.cpio"):
                old.unlink()
            tmp = initramfs.with_suffix(".tmp")
            tmp.write_bytes(image)
            tmp.rename(initramfs)
    vmlinux = kdir / "vmlinux"
    return Image(qemu, vmlinux, kdir / "vmlinuz", initramfs, kdir.name)


# --- run ---------------------------------------------------------------------------


@dataclass
class Result:
    """What a run gives back. ``rc`` is the guest command's exit status, or 124 (the
    timeout hit) or 125 (the guest died before reporting one)."""

    rc: int
    console: str
    job_log: str
    out: Path
    timings: dict[str, float] = field(default_factory=dict)


def pick_accel() -> str:
    forced = os.environ.get("OOMDVM_ACCEL")
    if forced:
        return forced
    # /dev/kvm may be PVM (Ant Group's pagetable-based VMs), which only boots
    # PVM-enlightened kernels: use TCG unless this is hardware virtualization.
    if os.path.exists("/sys/module/kvm_pvm") or not os.access("/dev/kvm", os.R_OK | os.W_OK):
        return "tcg"
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return "tcg"
    return "kvm" if re.search(r"^flags\s*:.*\b(vmx|svm)\b", flags, re.M) else "tcg"


def parse_size(text: str) -> int:
    m = re.fullmatch(r"(\d+)([KMGkmg]?)", text.strip())
    if not m:
        raise ValueError(f"bad size {text!r} (want e.g. 512M or 2G)")
    return int(m.group(1)) << {"": 0, "k": 10, "m": 20, "g": 30}[m.group(2).lower()]


def _prune_runs(runs: Path) -> None:
    now = time.time()
    for run in runs.glob("*"):
        with contextlib.suppress(OSError):
            if now - run.stat().st_mtime > RUNS_KEPT_S:
                shutil.rmtree(run, ignore_errors=True)


_libc = None


def _set_pdeathsig() -> None:
    """In the child: if the wrapper dies (even SIGKILLed), ``timeout`` gets SIGTERM
    and passes it on to qemu."""
    global _libc
    with contextlib.suppress(OSError, AttributeError):
        if _libc is None:
            _libc = ctypes.CDLL(None)
        _libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    """Stop ``timeout`` and qemu: SIGTERM (timeout forwards it), then SIGKILL their
    process group (only theirs: they run in a session of their own)."""
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            pass
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(5)


class _Terminated(BaseException):
    pass


def _raise_terminated(signum: int, _frame: object) -> None:
    raise _Terminated(signum)


#: systemd mode: what runs the job under systemd, and the unit that runs it. The wrapper
#: plays the busybox init's part (job start/exit lines, job.log, rc) and powers off.
SYSTEMD_JOB_WRAPPER = """\
# written by oomdvm: runs job.sh under systemd (ExecStart of oomdvm-job.service)
M=$(dirname "$0")
echo "oomdvm-init: job start (uptime $(cut -d' ' -f1 /proc/uptime)s)" >/dev/console
( /usr/bin/env -i /bin/sh "$M/job.sh" </dev/null; echo $? >"$M/rc.tmp" ) 2>&1 |
\ttee "$M/job.log" >/dev/console
rc=$(cat "$M/rc.tmp" 2>/dev/null)
echo "${rc:=125}" >"$M/rc"
echo "oomdvm-init: job exit rc=$rc" >/dev/console
sync
systemctl poweroff --force --force
"""

SYSTEMD_JOB_UNIT = """\
# written by oomdvm: the only unit started at boot in systemd mode
[Unit]
Description=oomdvm job
DefaultDependencies=no
AllowIsolate=yes

[Service]
Type=oneshot
ExecStart=/bin/sh {wrapper}
StandardInput=null
StandardOutput=null
StandardError=null
"""


def _write_systemd_job(meta: Path) -> None:
    wrapper = meta / "job-systemd.sh"
    wrapper.write_text(SYSTEMD_JOB_WRAPPER)
    (meta / "oomdvm-job.service").write_text(SYSTEMD_JOB_UNIT.format(wrapper=wrapper))


def run_vm(
    cmd: Sequence[str],
    *,
    mem: str = "2G",
    cpus: int = 2,
    swap: str = "disk",
    swap_size: str = "2G",
    root: str = "overlay",
    rw: Sequence[str | os.PathLike[str]] = (),
    out: str | os.PathLike[str] | None = None,
    cwd: str | os.PathLike[str] | None = None,
    env: Mapping[str, str] | None = None,
    timeout: float = 300,
    stream: bool = True,
    verbose: bool = False,
    image: Image | None = None,
    init: str = "busybox",
) -> Result:
    """Boot the guest, run ``cmd`` as root in ``cwd`` (default: the current directory,
    the same path in the guest), power off. The guest command sees ``OOMDVM=1`` and
    ``OOMDVM_OUT`` (a directory shared read-write with the host) in its environment.
    ``stream`` echoes the serial console (kernel messages and the job's output) to
    stdout as it comes. ``init="systemd"`` boots the host's ``/lib/systemd/systemd`` as
    PID 1 of the guest's root instead of running ``cmd`` from the busybox init: the job
    is then a oneshot unit (``oomdvm-job.service``, nothing else is started at boot) that
    powers the guest off when ``cmd`` ends."""
    if swap not in ("disk", "zram", "none"):
        raise ValueError(f"swap must be disk, zram or none, not {swap!r}")
    if init not in ("busybox", "systemd"):
        raise ValueError(f"init must be busybox or systemd, not {init!r}")
    if root not in ("overlay", "ro"):
        raise ValueError(f"root must be overlay or ro, not {root!r}")
    t0 = time.monotonic()
    image = image or build()
    build_s = time.monotonic() - t0
    runs = cache_dir() / "runs"
    runs.mkdir(parents=True, exist_ok=True)
    _prune_runs(runs)
    if out is None:
        out_dir = Path(tempfile.mkdtemp(prefix=time.strftime("%Y%m%d-%H%M%S-"), dir=runs))
    else:
        out_dir = Path(out).resolve()
        out_dir.mkdir(parents=True, exist_ok=True)
    meta = out_dir / ".oomdvm"
    shutil.rmtree(meta, ignore_errors=True)
    meta.mkdir()
    workdir = Path(cwd).resolve() if cwd is not None else Path.cwd()
    shares = [Path(p).resolve() for p in rw]
    for share in shares:
        if not share.is_dir():
            raise VMError(f"--rw {share}: not a directory")

    job_env = {
        "OOMDVM": "1",
        "OOMDVM_OUT": str(out_dir),
        "PYTHONUNBUFFERED": "1",
        "LANG": "C.UTF-8",
        "TERM": "dumb",
    }
    for key in ("PATH", "HOME", "VIRTUAL_ENV", "PYTHONPATH"):
        if key in os.environ:
            job_env[key] = os.environ[key]
    job_env.setdefault("PATH", "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")
    job_env.update(env or {})
    job = ["# written by oomdvm: the job, run chrooted into the guest's root"]
    job += [f"export {k}={shlex.quote(v)}" for k, v in job_env.items()]
    job += [f"cd {shlex.quote(str(workdir))} || exit 126", "exec " + shlex.join(cmd)]
    (meta / "job.sh").write_text("\n".join(job) + "\n")
    if init == "systemd":
        _write_systemd_job(meta)
    config = {
        "OOMDVM_INIT": init,
        "OOMDVM_OUT": str(out_dir),
        "OOMDVM_ROOT": root,
        "OOMDVM_SWAP": swap,
        "OOMDVM_SWAP_BYTES": str(parse_size(swap_size)),
    }
    (meta / "config.sh").write_text("".join(f"{k}={shlex.quote(v)}\n" for k, v in config.items()))
    # Parents first, so a share inside another share is mounted on top of it.
    shares.sort(key=lambda p: len(p.parts))
    (meta / "mounts").write_text("".join(f"oomdvm-rw{i} {p}\n" for i, p in enumerate(shares)))

    accel = pick_accel()
    kernel = image.vmlinux if image.vmlinux.exists() else image.bzimage
    if os.environ.get("OOMDVM_BZIMAGE"):
        kernel = image.bzimage
    append = KERNEL_CMDLINE + (" loglevel=8" if verbose else " quiet")
    if init == "systemd":
        append += " systemd.show_status=false"
    qemu = [
        image.qemu,
        "-nodefaults",
        "-no-user-config",
        "-nographic",
        "-machine",
        "pc",
        "-accel",
        "tcg,thread=multi" if accel == "tcg" else accel,
        "-cpu",
        "max" if accel == "tcg" else "host",
        "-smp",
        str(cpus),
        "-m",
        mem,
        "-no-reboot",
        "-kernel",
        str(kernel),
        "-initrd",
        str(image.initramfs),
        "-append",
        append,
        "-chardev",
        "stdio,id=con,signal=off",
        "-serial",
        "chardev:con",
        "-fsdev",
        "local,id=root,path=/,security_model=passthrough,readonly=on,multidevs=remap",
        "-device",
        "virtio-9p-pci,fsdev=root,mount_tag=oomdvm-root",
        "-fsdev",
        f"local,id=out,path={out_dir},security_model=passthrough,multidevs=remap",
        "-device",
        "virtio-9p-pci,fsdev=out,mount_tag=oomdvm-out",
    ]
    for i, share in enumerate(shares):
        qemu += [
            "-fsdev",
            f"local,id=rw{i},path={share},security_model=passthrough,multidevs=remap",
            "-device",
            f"virtio-9p-pci,fsdev=rw{i},mount_tag=oomdvm-rw{i}",
        ]
    swap_img = meta / "swap.img"
    if swap == "disk":
        with open(swap_img, "wb") as f:
            f.truncate(parse_size(swap_size))
        qemu += [
            "-drive",
            f"file={swap_img},format=raw,if=none,id=swap,cache=unsafe",
            "-device",
            "virtio-blk-pci,drive=swap",
        ]
    (meta / "qemu.argv").write_text(shlex.join(qemu) + "\n")
    argv = ["timeout", "--kill-after=10", str(max(1, int(timeout))), *qemu]

    console_path = meta / "console.log"
    timings: dict[str, float] = {"build_s": round(build_s, 3)}
    lines: list[str] = []
    old_handler = None
    if threading.current_thread() is threading.main_thread():
        old_handler = signal.signal(signal.SIGTERM, _raise_terminated)
    boot_t = time.monotonic()
    proc = subprocess.Popen(
        argv,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
        preexec_fn=_set_pdeathsig,
    )
    try:
        assert proc.stdout is not None
        with open(console_path, "w", encoding="utf-8") as console:
            for raw in proc.stdout:
                now = time.monotonic() - boot_t
                line = raw.decode("utf-8", "replace").replace("\r", "")
                lines.append(line)
                console.write(f"[{now:7.2f}] {line}")
                console.flush()
                if stream:
                    sys.stdout.write(line)
                    sys.stdout.flush()
                if JOB_START in line:
                    timings["boot_to_job_s"] = round(now, 3)
                elif JOB_EXIT.search(line):
                    timings["job_s"] = round(now - timings.get("boot_to_job_s", 0.0), 3)
        qemu_rc = proc.wait()
    finally:
        _kill_group(proc)
        if old_handler is not None:
            signal.signal(signal.SIGTERM, old_handler)
        with contextlib.suppress(OSError):
            swap_img.unlink()
    timings["total_s"] = round(time.monotonic() - t0, 3)
    try:
        rc = int((meta / "rc").read_text().strip())
    except (OSError, ValueError):
        rc = RC_TIMEOUT if qemu_rc in (124, 137) else RC_GUEST_DIED
        if rc == RC_TIMEOUT:
            log(f"timeout: the guest ran past {timeout:.0f}s; killed")
        else:
            log(f"the guest died before reporting a status (qemu rc {qemu_rc}); see {console_path}")
    (meta / "timings.json").write_text(json.dumps(timings, indent=1) + "\n")
    try:
        job_log = (meta / "job.log").read_text(errors="replace")
    except OSError:
        job_log = ""
    return Result(rc, "".join(lines), job_log, out_dir, timings)


# --- command line ------------------------------------------------------------------


def _add_run_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--mem", default="2G", help="guest memory (default 2G)")
    p.add_argument("--cpus", type=int, default=2, help="guest vCPUs (default 2)")
    p.add_argument("--swap", choices=("disk", "zram", "none"), default="disk")
    p.add_argument("--swap-size", default="2G")
    p.add_argument("--root", choices=("overlay", "ro"), default="overlay")
    p.add_argument("--rw", action="append", default=[], metavar="DIR", help="share read-write")
    p.add_argument("--out", help="keep the run's files here (default: a dir in the cache)")
    p.add_argument("--cwd", help="the job's directory (default: the current one)")
    p.add_argument("--env", action="append", default=[], metavar="K=V")
    p.add_argument("--timeout", type=float, default=300, help="hard limit in seconds")
    p.add_argument("-q", "--quiet", action="store_true", help="do not stream the console")
    p.add_argument("-v", "--verbose", action="store_true", help="all kernel messages")
    p.add_argument(
        "--init",
        choices=("busybox", "systemd"),
        default="busybox",
        help="run the job from the busybox init (default) or boot systemd as PID 1",
    )


def _run_kwargs(a: argparse.Namespace) -> dict[str, object]:
    env = dict(item.split("=", 1) for item in a.env)
    return {
        "mem": a.mem,
        "cpus": a.cpus,
        "swap": a.swap,
        "swap_size": a.swap_size,
        "root": a.root,
        "rw": a.rw,
        "out": a.out,
        "cwd": a.cwd,
        "env": env,
        "timeout": a.timeout,
        "stream": not a.quiet,
        "verbose": a.verbose,
        "init": a.init,
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="oomdvm", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    b = sub.add_parser("build", help="install qemu, fetch kernel and busybox (cached)")
    b.add_argument("--refresh", action="store_true", help="re-resolve and re-download")
    r = sub.add_parser("run", help="run one command in the guest: run [options] -- CMD ...")
    _add_run_options(r)
    r.add_argument("cmd", nargs=argparse.REMAINDER)
    s = sub.add_parser("selftest", help="memory pressure, cgroup.kill and kernel OOM check")
    _add_run_options(s)
    s.add_argument("--hog", default="600M")
    s.add_argument("--high", default="200M")
    s.add_argument("--max", default="300M")
    s.add_argument("--seconds", type=float, default=10)
    a = parser.parse_args(argv)
    try:
        if a.command == "build":
            t0 = time.monotonic()
            image = build(refresh=a.refresh)
            log(f"ready in {time.monotonic() - t0:.2f}s: kernel {image.kernel_release}")
            log(f"cache: {cache_dir()}")
            return 0
        if a.command == "run":
            cmd = a.cmd[1:] if a.cmd[:1] == ["--"] else a.cmd
            if not cmd:
                parser.error("run needs a command: run [options] -- CMD ...")
            result = run_vm(cmd, **_run_kwargs(a))  # type: ignore[arg-type]
        else:
            cmd = [
                sys.executable,
                str(SELFTEST_SCRIPT),
                *("--hog", a.hog, "--high", a.high, "--max", a.max),
                *("--seconds", str(a.seconds)),
            ]
            kwargs = _run_kwargs(a)
            kwargs["cwd"] = kwargs["cwd"] or "/"
            result = run_vm(cmd, **kwargs)  # type: ignore[arg-type]
    except VMError as e:
        log(f"error: {e}")
        return 2
    except _Terminated:
        log("terminated; qemu stopped")
        return 128 + signal.SIGTERM
    log(f"rc={result.rc} timings={json.dumps(result.timings)} files={result.out / '.oomdvm'}")
    return result.rc


if __name__ == "__main__":
    sys.exit(main())
