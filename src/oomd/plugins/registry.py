"""Plugin names -> classes: the built-in plugins and third-party ones.

Built-in modules and entry points are imported only when a config names the plugin,
so the daemon does not load code its config does not use. Third-party plugins come
from two places, both read by :func:`discover` at start (docs/writing_a_plugin.md):

* the ``oomd.plugins`` entry-point group: an installed distribution registers
  ``name = "module:Class"``;
* ``--plugin-dir DIR``: every ``*.py`` file in DIR (dot-files excluded) is executed as
  a module and registers each :class:`~oomd.engine.plugin.Plugin` subclass it defines
  whose ``name`` is not empty. DIR, its files and every directory above them up to
  ``/`` must be owned by root (or the daemon's user) and not writable by group or
  others (a sticky ancestor such as ``/tmp`` excepted), as sshd checks its files.

A third-party name that is also a built-in one, or that two sources register, is an
error at start naming both origins - never a silent override.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import re
import sys
from collections.abc import Sequence

from oomd.typeshim import TYPE_CHECKING

if TYPE_CHECKING:
    # Imported only when some distribution declares the group (_entry_points): it
    # costs every daemon start 3 MiB and 20 ms otherwise (bench/README.md).
    import importlib.metadata

from oomd.engine.plugin import Plugin
from oomd.engine.prekill import PrekillHook
from oomd.trusted import Untrusted, read_trusted, untrusted_dir_chain

#: Every built-in plugin that works. A plugin is listed here only once it is complete.
BUILTIN: dict[str, str] = {
    "continue": "oomd.plugins.basic:Continue",
    "stop": "oomd.plugins.basic:Stop",
    "pressure_above": "oomd.plugins.pressure_above:PressureAbove",
    "pressure_rising_beyond": "oomd.plugins.pressure_rising_beyond:PressureRisingBeyond",
    "pressure_trigger": "oomd.plugins.pressure_trigger:PressureTrigger",
    "memory_above": "oomd.plugins.memory_above:MemoryAbove",
    "memory_reclaim": "oomd.plugins.memory_reclaim:MemoryReclaim",
    "swap_free": "oomd.plugins.swap_free:SwapFree",
    "exists": "oomd.plugins.exists:Exists",
    "nr_dying_descendants": "oomd.plugins.nr_dying_descendants:NrDyingDescendants",
    "dump_cgroup_overview": "oomd.plugins.dump_cgroup_overview:DumpCgroupOverview",
    "kernel_panic": "oomd.plugins.kernel_panic:KernelPanic",
    "kill_by_memory_size_or_growth": "oomd.plugins.kill_memory_growth:KillMemoryGrowth",
    "kill_by_swap_usage": "oomd.plugins.kill_swap_usage:KillSwapUsage",
    "kill_by_pressure": "oomd.plugins.kill_pressure:KillPressure",
    "kill_by_pg_scan": "oomd.plugins.kill_pg_scan:KillPgScan",
    "kill_by_io_cost": "oomd.plugins.kill_io_cost:KillIOCost",
    "senpai": "oomd.plugins.senpai:Senpai",
    "systemd_restart": "oomd.plugins.systemd_restart:SystemdRestart",
}


def _load(target: str | None) -> type[Plugin] | None:
    if target is None:
        return None
    module_name, _, attr = target.partition(":")
    cls = getattr(importlib.import_module(module_name), attr)
    assert isinstance(cls, type) and issubclass(cls, Plugin)
    return cls


def get(name: str) -> type[Plugin] | None:
    """The class registered as ``name``, or None. Raises PluginLoadError when a
    third-party plugin's entry point cannot be loaded."""
    builtin = BUILTIN.get(name)
    if builtin is not None:
        return _load(builtin)
    external = _external.get(name)
    return None if external is None else external.load()


def names() -> list[str]:
    """The built-in plugins' names, sorted."""
    return sorted(BUILTIN)


def origin(name: str) -> str | None:
    """Where a third-party plugin comes from; None for built-ins and unknown names."""
    external = _external.get(name)
    return None if external is None else external.origin


def listing() -> list[tuple[str, str | None]]:
    """Every plugin, sorted by name, with its origin (None: built in)."""
    entries: list[tuple[str, str | None]] = [(name, None) for name in BUILTIN]
    entries += [(name, ext.origin) for name, ext in _external.items()]
    return sorted(entries)


# -- third-party plugins -----------------------------------------------------------------

ENTRY_POINT_GROUP = "oomd.plugins"


class PluginLoadError(Exception):
    """Third-party plugins that cannot be used; ``problems`` holds one message each."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


class External:
    """A third-party plugin: from an entry point (loaded on first use) or a plugin
    directory (loaded at discovery)."""

    __slots__ = ("cls", "entry_point", "name", "origin")

    def __init__(
        self,
        name: str,
        origin: str,
        entry_point: importlib.metadata.EntryPoint | None = None,
        cls: type[Plugin] | None = None,
    ) -> None:
        self.name = name
        self.origin = origin
        self.entry_point = entry_point
        self.cls = cls

    def __repr__(self) -> str:
        return f"External({self.name!r}, {self.origin!r})"

    def load(self) -> type[Plugin]:
        if self.cls is not None:
            return self.cls
        assert self.entry_point is not None
        try:
            loaded = self.entry_point.load()
        except (Exception, SystemExit) as e:  # a plugin module must not end oomd
            raise PluginLoadError(
                [f"cannot load plugin {self.name} ({self.origin}): {_exception_line(e)}"]
            ) from e
        if not (isinstance(loaded, type) and issubclass(loaded, Plugin)):
            raise PluginLoadError(
                [
                    f"plugin {self.name} ({self.origin}) is {loaded!r}, "
                    "not a subclass of oomd.plugin.Plugin"
                ]
            )
        if loaded.name != self.name:
            raise PluginLoadError(
                [
                    f"plugin {self.name} ({self.origin}): the class's name is "
                    f"{loaded.name!r}; it must be the entry point's name"
                ]
            )
        self.cls = loaded
        return loaded


_external: dict[str, External] = {}
_module_serial = 0


def reset() -> None:
    """Forget every third-party plugin (tests)."""
    _external.clear()


def discover(plugin_dirs: Sequence[str] = (), entry_points: bool = True) -> list[str]:
    """Replace the third-party plugins with those of the ``oomd.plugins`` entry points
    (if ``entry_points``) and of ``plugin_dirs``. Returns warnings; raises
    PluginLoadError listing every problem (clashes, refused or broken files), in which
    case no third-party plugin is registered."""
    found: dict[str, External] = {}
    problems: list[str] = []
    warnings: list[str] = []

    def add(external: External) -> None:
        if external.name in BUILTIN:
            problems.append(
                f"plugin {external.name} ({external.origin}) has the name of a built-in "
                "plugin; rename it"
            )
        elif external.name in found:
            problems.append(
                f"plugin {external.name} is registered twice: "
                f"{found[external.name].origin} and {external.origin}"
            )
        else:
            found[external.name] = external

    if entry_points:
        try:
            eps = _entry_points()
        except Exception as e:  # broken metadata of some installed distribution
            problems.append(
                f"cannot read the {ENTRY_POINT_GROUP} entry points: {_exception_line(e)}"
            )
            eps = []
        for ep in eps:
            add(External(ep.name, _entry_point_origin(ep), entry_point=ep))
    for directory in plugin_dirs:
        for external in _load_plugin_dir(directory, problems, warnings):
            add(external)
    _external.clear()
    if problems:
        raise PluginLoadError(problems)
    _external.update(found)
    return warnings


def _may_declare_entry_points() -> bool:
    """Whether a distribution on sys.path may declare the ``oomd.plugins`` group: its
    ``entry_points.txt`` names the group. A cheap look (scandir and a few small reads)
    before importlib.metadata; anything it cannot judge (a zip on sys.path) says yes."""
    for entry in sys.path:
        directory = entry or "."
        try:
            with os.scandir(directory) as it:
                infos = [e.path for e in it if e.name.endswith((".dist-info", ".egg-info"))]
        except NotADirectoryError:
            return True
        except OSError:
            continue
        for info in infos:
            try:
                with open(os.path.join(info, "entry_points.txt"), "rb") as f:
                    text = f.read()
            except OSError:
                continue
            if b"[" + ENTRY_POINT_GROUP.encode() + b"]" in text.replace(b" ", b""):
                return True
    return False


def _entry_points() -> list[importlib.metadata.EntryPoint]:
    if not _may_declare_entry_points():
        return []
    import importlib.metadata

    seen: set[tuple[str, str, str]] = set()
    unique = []
    for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
        key = (ep.name, ep.value, _dist_name(ep))
        if key not in seen:
            seen.add(key)
            unique.append(ep)
    return unique


def _dist_name(ep: importlib.metadata.EntryPoint) -> str:
    dist = ep.dist
    return "" if dist is None else dist.name


def _entry_point_origin(ep: importlib.metadata.EntryPoint) -> str:
    dist = ep.dist
    source = "an unknown distribution" if dist is None else f"{dist.name} {dist.version}"
    return f"entry point: {source}, {ep.value}"


def _exception_line(e: BaseException) -> str:
    import traceback  # only on errors

    return "".join(traceback.format_exception_only(e)).strip().replace("\n", " ")


def _load_plugin_dir(directory: str, problems: list[str], warnings: list[str]) -> list[External]:
    """Every plugin class of every ``*.py`` file in ``directory`` (sorted by file
    name). The directory is opened once and files are opened relative to it, then
    checked and read through the same descriptor, so what is checked is what runs."""
    try:
        dir_fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError as e:
        problems.append(f"plugin dir {directory}: {e.strerror}")
        return []
    try:
        real = _real_dir(dir_fd, directory)
        why = untrusted_dir_chain(real) if real is not None else "cannot tell where it is"
        if why is not None:
            problems.append(f"refusing plugin dir {directory}: {why}")
            return []
        names = sorted(n for n in os.listdir(dir_fd) if n.endswith(".py") and not n.startswith("."))
        found: list[External] = []
        for name in names:
            path = os.path.join(directory, name)
            source = _read_plugin_file(dir_fd, name, path, problems)
            if source is None:
                continue
            classes = _exec_plugin_file(path, source, problems)
            if classes is None:
                continue
            if not classes:
                warnings.append(f"plugin dir file {path} defines no plugin class")
            found += [External(cls.name, f"plugin dir: {path}", cls=cls) for cls in classes]
        return found
    finally:
        os.close(dir_fd)


def _real_dir(dir_fd: int, directory: str) -> str | None:
    """The path, symlinks resolved, of the directory open as ``dir_fd``: its chain is
    checked, and it is the same inode that was opened (not one swapped in since)."""
    try:
        real = os.readlink(f"/proc/self/fd/{dir_fd}")
        same = os.lstat(real)
    except OSError:
        return None
    opened = os.fstat(dir_fd)
    if (same.st_dev, same.st_ino) != (opened.st_dev, opened.st_ino):
        return None
    return real


def _read_plugin_file(dir_fd: int, name: str, path: str, problems: list[str]) -> bytes | None:
    try:
        return read_trusted(name, dir_fd)  # None: a directory or device named *.py
    except Untrusted as e:
        problems.append(f"refusing plugin dir file {path}: {e}")
    except OSError as e:
        problems.append(f"plugin dir file {path}: {e.strerror}")
    return None


def _exec_plugin_file(path: str, source: bytes, problems: list[str]) -> list[type[Plugin]] | None:
    """Run a plugin file as a fresh module; its plugin classes, or None if it failed."""
    global _module_serial
    _module_serial += 1
    stem = re.sub(r"\W", "_", os.path.basename(path)[: -len(".py")])
    module_name = f"oomd_plugin_dir_{_module_serial}_{stem}"
    spec = importlib.util.spec_from_loader(module_name, loader=None, origin=path)
    assert spec is not None
    module = importlib.util.module_from_spec(spec)
    module.__file__ = path
    sys.modules[module_name] = module
    try:
        exec(compile(source, path, "exec", dont_inherit=True), module.__dict__)
    except BaseException as e:  # SystemExit included: a plugin file must not end oomd
        del sys.modules[module_name]
        if isinstance(e, SyntaxError):
            at, what = f" (line {e.lineno})", f"SyntaxError: {e.msg}"
        else:
            import traceback

            frames = [f for f in traceback.extract_tb(e.__traceback__) if f.filename == path]
            at, what = f" (line {frames[-1].lineno})" if frames else "", _exception_line(e)
        problems.append(f"plugin dir file {path} failed to load{at}: {what}")
        return None
    return [
        obj
        for obj in vars(module).values()
        if isinstance(obj, type)
        and issubclass(obj, Plugin)
        and not issubclass(obj, PrekillHook)
        and obj.__module__ == module_name
        and obj.name
    ]


#: Prekill hooks: a separate namespace, as upstream (hooks are not plugins).
HOOKS: dict[str, str] = {
    "dummy_prekill_hook": "oomd.plugins.prekill_hooks:DummyPrekillHook",
    "exec_prekill_hook": "oomd.plugins.prekill_hooks:ExecPrekillHook",
}


def get_hook(name: str) -> type[Plugin] | None:
    return _load(HOOKS.get(name))


POSTKILL_HOOKS: dict[str, str] = {
    "exec_postkill_hook": "oomd.plugins.postkill_hooks:ExecPostkillHook",
}


def get_postkill_hook(name: str) -> type[Plugin] | None:
    return _load(POSTKILL_HOOKS.get(name))
