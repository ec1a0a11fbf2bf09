"""Drop-in configs (``-w DIR``): files that add or override rulesets at run time.

Upstream's semantics (``dropin/FsDropInService.cpp``, ``docs/drop_in_configs.md``):
the tag of a drop-in is its file name, dot-files are ignored, a changed file replaces
its drop-in, a removed file removes it, and a directory that does not exist yet (or
goes away) is retried every tick. Changes are applied at the start of the next tick.

Beyond upstream (docs/compatibility.md): a file merely created in place counts too;
all events of a tick are batched, so a file written in several chunks is read once;
a file that fails to parse or compile is logged with the reason and leaves the running
rules as they were; and a file not owned by root (or by the daemon's user), or
writable by its group or others, is refused - a drop-in decides what gets killed -
and so is every file while the directory, or any directory above it (after
symlinks), fails the same check (a sticky ancestor such as ``/tmp`` excepted): a
directory another user can write to lets them plant a symlink to any root-owned file.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Callable

from oomd import inotify, log
from oomd.config.errors import ConfigError
from oomd.config.ir import ConfigIR
from oomd.config.parser import parse_config
from oomd.engine.engine import DropInUnit, Engine
from oomd.trusted import Untrusted, read_trusted, untrusted_dir_chain

_FILE_EVENTS = inotify.IN_CREATE | inotify.IN_MODIFY | inotify.IN_CLOSE_WRITE | inotify.IN_MOVED_TO
_GONE_EVENTS = inotify.IN_DELETE | inotify.IN_MOVED_FROM
_SELF_EVENTS = inotify.IN_DELETE_SELF | inotify.IN_MOVE_SELF | inotify.IN_IGNORED
_MASK = (
    _FILE_EVENTS | _GONE_EVENTS | inotify.IN_DELETE_SELF | inotify.IN_MOVE_SELF | inotify.IN_ONLYDIR
)

Compile = Callable[[ConfigIR], DropInUnit]


def dropin_files(directory: str) -> list[str]:
    """The drop-in files of ``directory`` in the order the daemon first applies them
    (sorted; dot-files and non-files ignored). OSError if it cannot be listed."""
    return sorted(
        os.path.join(directory, e.name)
        for e in os.scandir(directory)
        if not e.name.startswith(".") and e.is_file()
    )


def read_dropin(path: str) -> ConfigIR:
    """A drop-in file read and parsed exactly as the daemon reads it (refused when
    not trusted); ConfigError saying why it cannot be used."""
    try:
        data = read_trusted(path)
    except Untrusted as e:
        raise ConfigError([f"Refusing drop in config={path}: {e}"]) from None
    except OSError as e:
        raise ConfigError([f"Could not open drop in config={path}: {e.strerror}"]) from None
    if data is None:
        raise ConfigError([f"{path}: not a regular file"])
    return parse_config(data.decode("utf-8", "replace"), path)


class DropInService:
    """Watches one directory and keeps the engine's drop-ins in step with it."""

    def __init__(self, directory: str, engine: Engine, compile_unit: Compile) -> None:
        self.directory = directory.rstrip("/") or "/"
        self.engine = engine
        self.compile_unit = compile_unit
        self._inotify: inotify.Inotify | None = None
        self._missing_logged = False
        self._refused_logged: str | None = None
        self.tags: set[str] = set()

    def close(self) -> None:
        if self._inotify is not None:
            self._inotify.close()
            self._inotify = None

    def poll(self) -> None:
        """Apply every change since the last call (call at the start of each tick)."""
        if self._inotify is None and not self._start():
            return
        assert self._inotify is not None
        changed: dict[str, None] = {}
        rescan = lost = False
        for event in self._inotify.read_events():
            if event.mask & inotify.IN_Q_OVERFLOW:
                rescan = True
            elif event.mask & _SELF_EVENTS:
                lost = True
            elif event.name and not event.mask & inotify.IN_ISDIR:
                changed.pop(event.name, None)
                changed[event.name] = None
        if rescan:
            changed = dict.fromkeys(sorted(self.tags | set(self._listing())))
        for name in changed:
            self._sync(name)
        if lost:
            log.info(f"Drop-in directory {self.directory} went away; watching for it again")
            self.close()

    def _start(self) -> bool:
        if not os.path.isdir(self.directory):
            if not self._missing_logged:
                log.info(f"Error: {self.directory} is not a directory (retrying every tick)")
                self._missing_logged = True
            return False
        why = untrusted_dir_chain(os.path.realpath(self.directory))
        if why is not None:
            if self._refused_logged != why:
                log.info(
                    f"Refusing drop-in directory {self.directory}: {why} (retrying every tick)"
                )
                self._refused_logged = why
            return False
        self._refused_logged = None
        try:
            watcher = inotify.Inotify()
            try:
                watcher.add_watch(self.directory, _MASK)
            except OSError:
                watcher.close()
                raise
        except OSError as e:
            if not self._missing_logged:
                log.info(f"Error: cannot watch {self.directory}: {e.strerror}")
                self._missing_logged = True
            return False
        self._inotify = watcher
        self._missing_logged = False
        log.info(f"Watching {self.directory} for drop-in configs")
        for name in sorted(self.tags | set(self._listing())):
            self._sync(name)
        return True

    def _listing(self) -> list[str]:
        try:
            return [e.name for e in os.scandir(self.directory) if not e.name.startswith(".")]
        except OSError:
            return []

    def _sync(self, name: str) -> None:
        if name.startswith("."):
            return
        path = os.path.join(self.directory, name)
        try:
            st = os.stat(path)
        except OSError:
            st = None
        if st is None or not stat.S_ISREG(st.st_mode):
            if name in self.tags:
                log.info(f"Removing drop in config={path}")
                self.engine.remove_dropin(name)
                self.tags.discard(name)
                log.info(f"Drop in config={name} removed from engine")
            return
        self._add(name, path)

    def _add(self, name: str, path: str) -> None:
        log.info(f"Adding drop in config={path}")
        try:
            data = read_trusted(path)
        except Untrusted as e:
            log.info(f"Refusing drop in config={path}: {e}")
            return
        except OSError as e:
            log.info(f"Could not open drop in config={path}: {e.strerror}")
            return
        if data is None:
            return
        try:
            unit = self.compile_unit(parse_config(data.decode("utf-8", "replace"), path))
        except ConfigError as e:
            for problem in e.problems:
                log.info(problem)
            log.info(
                f"Failed to inject drop in config={name} into engine; the running rules are unchanged"
            )
            return
        for warning in unit.warnings:
            log.info("Warning: " + warning)
        if self.engine.add_dropin(name, unit):
            self.tags.add(name)
            log.info(f"Drop in config={name} injected into engine")
        else:
            self.tags.discard(name)
            log.info(f"Failed to inject drop in config={name} into engine")
