"""Cgroup paths and the patterns plugins use to name them.

A path is the cgroup filesystem root plus a tuple of components (``""``, ``"/"`` and
``"////"`` are all the root). A pattern is one piece of a plugin's comma list: ``*``,
``?`` and ``[...]`` match within one component (``**`` is ``*``), names starting with a
dot are never matched by a wildcard, and only directories match - the rules of the
``glob(3)`` call upstream uses.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from fnmatch import translate
from functools import lru_cache

_MAGIC = re.compile(r"[*?\[]")

#: The most components a pattern may have: a path of more can never exist (each
#: component takes at least two of PATH_MAX's 4,096 bytes).
MAX_PATTERN_COMPONENTS = 2048
_SURROGATE = re.compile("[\ud800-\udfff]")
_SINGLE_BRACE = re.compile(r"\{([^{},]*)\}")


class CgroupPath:
    """An immutable cgroup path; equality and hashing go by the absolute path."""

    # ``relative`` is derived on use, not stored: at 10,000 cgroups a third string per
    # path costs 0.7 MB for a value read only by log lines and file opens.
    __slots__ = ("absolute", "fs", "parts")

    fs: str
    parts: tuple[str, ...]
    absolute: str

    def __init__(self, fs: str, path: str | Iterable[str] = ()) -> None:
        if len(fs) > 1 and fs.endswith("/"):
            fs = fs[:-1]
        parts = tuple(p for p in path.split("/") if p) if isinstance(path, str) else tuple(path)
        self.fs = fs
        self.parts = parts
        relative = "/".join(parts)
        self.absolute = fs if not parts else (fs + "/" + relative if fs != "/" else "/" + relative)

    @property
    def relative(self) -> str:
        """The components joined with ``/`` (``""`` for the root)."""
        if not self.parts:
            return ""
        return self.absolute[len(self.fs) + 1 :] if self.fs != "/" else self.absolute[1:]

    @property
    def is_root(self) -> bool:
        return not self.parts

    @property
    def name(self) -> str:
        return self.parts[-1] if self.parts else ""

    def parent(self) -> CgroupPath:
        if not self.parts:
            raise ValueError("the root cgroup has no parent")
        return CgroupPath(self.fs, self.parts[:-1])

    def child(self, name: str) -> CgroupPath:
        return CgroupPath(self.fs, (*self.parts, *(p for p in name.split("/") if p)))

    def is_ancestor_of(self, other: CgroupPath) -> bool:
        """True when ``other`` lies strictly below this path."""
        n = len(self.parts)
        return len(other.parts) > n and other.parts[:n] == self.parts

    def __eq__(self, other: object) -> bool:
        return isinstance(other, CgroupPath) and other.absolute == self.absolute

    def __hash__(self) -> int:
        return hash(self.absolute)

    def __lt__(self, other: CgroupPath) -> bool:
        return self.parts < other.parts

    def __repr__(self) -> str:
        return f"CgroupPath({self.fs!r}, {self.relative!r})"


@lru_cache(maxsize=4096)
def _matcher(component: str) -> re.Pattern[str]:
    # glob(3) negates a bracket expression with "^" as well as "!"; fnmatch only "!".
    return re.compile(translate(component.replace("[^", "[!")))


class CgroupPattern:
    """One cgroup pattern (no commas), relative to the cgroup filesystem root."""

    __slots__ = ("fs", "parts", "text")

    def __init__(self, fs: str, text: str) -> None:
        if len(fs) > 1 and fs.endswith("/"):
            fs = fs[:-1]
        self.fs = fs
        self.text = text
        # glob(3) with GLOB_BRACE: a brace group without a comma is just its content.
        expanded = _SINGLE_BRACE.sub(r"\1", text) if "{" in text else text
        self.parts = tuple(p for p in expanded.split("/") if p)

    @property
    def has_wildcard(self) -> bool:
        return any(_MAGIC.search(p) for p in self.parts)

    def under(self, base: CgroupPath) -> CgroupPattern:
        """This pattern taken relative to ``base`` (``ruleset_cgroup`` args)."""
        prefix = "/".join(base.parts)
        return CgroupPattern(self.fs, prefix + "/" + self.text if prefix else self.text)

    def resolve(self) -> list[tuple[CgroupPath, int]]:
        """Existing directories matching the pattern, with their inode numbers."""
        return [(CgroupPath(self.fs, parts), inode) for _, parts, inode in self.resolve_raw()]

    def resolve_raw(self) -> list[tuple[str, tuple[str, ...], int]]:
        """:meth:`resolve` as (absolute path, components, inode), the absolute path
        being exactly ``CgroupPath(self.fs, components).absolute``: what the per-tick
        context needs to find a cgroup it knows without building a path object.
        One ``scandir`` per directory a wildcard component looks into."""
        # Confined to the cgroup filesystem: neither a wildcard listing nor a literal
        # component follows a symlink (cgroup2 has none; a fake or tampered tree might),
        # and ".." never gets here (parse_pattern_list). Each literal component costs
        # one lstat per candidate and a missing one ends the walk, so resolution is
        # linear in what exists, not quadratic in the pattern's length.
        dirs: list[tuple[str, tuple[str, ...], int]] = [(self.fs, (), -1)]
        parts_all = self.parts
        i, n = 0, len(parts_all)
        while i < n and dirs:
            component = parts_all[i]
            if _MAGIC.search(component):
                match = _matcher(component).match
                dotted = component.startswith(".")
                found: list[tuple[str, tuple[str, ...], int]] = []
                for base, parts, _ in dirs:
                    try:
                        with os.scandir(base) as it:
                            for entry in it:
                                name = entry.name
                                if (name[0] == "." and not dotted) or not match(name):
                                    continue
                                try:
                                    if entry.is_dir(follow_symlinks=False):
                                        found.append((entry.path, (*parts, name), entry.inode()))
                                except OSError:
                                    continue
                    except OSError:
                        continue
                dirs = found
                i += 1
                continue
            end = i + 1
            while end < n and not _MAGIC.search(parts_all[end]):
                end += 1
            run = parts_all[i:end]
            walked: list[tuple[str, tuple[str, ...], int]] = []
            for base, parts, _ in dirs:
                path, inode = base, -1
                for name in run:
                    path = path + "/" + name if path != "/" else "/" + name
                    try:
                        st = os.lstat(path)
                    except OSError:
                        break
                    if not _is_dir(st.st_mode):
                        break
                    inode = st.st_ino
                else:
                    walked.append((path, parts + run, inode))
            dirs = walked
            i = end
        if not parts_all:  # the root itself
            try:
                st = os.stat(self.fs)
            except OSError:
                return []
            return [(self.fs, (), st.st_ino)] if _is_dir(st.st_mode) else []
        return dirs

    def matches(self, path: CgroupPath) -> bool:
        """Whether ``path`` itself matches this pattern (no filesystem access)."""
        if len(path.parts) != len(self.parts):
            return False
        for want, have in zip(self.parts, path.parts, strict=True):
            if _MAGIC.search(want):
                if (have.startswith(".") and not want.startswith(".")) or not _matcher(want).match(
                    have
                ):
                    return False
            elif want != have:
                return False
        return True

    def __repr__(self) -> str:
        return f"CgroupPattern({self.text!r})"


def _is_dir(mode: int) -> bool:
    return (mode & 0o170000) == 0o040000


def parse_pattern_list(fs: str, text: str) -> tuple[CgroupPattern, ...]:
    """A plugin's ``cgroup`` value: split on commas, empty pieces dropped, no trimming
    (as upstream, so ``"a, b"`` names a cgroup called ``" b"``). Raises ValueError for a
    pattern that could name something outside the cgroup filesystem or nothing at all
    (see :func:`check_pattern`)."""
    patterns = tuple(CgroupPattern(fs, piece) for piece in text.split(",") if piece)
    for pattern in patterns:
        check_pattern(pattern)
    return patterns


def check_pattern(pattern: CgroupPattern) -> None:
    """ValueError unless ``pattern`` is confined to the cgroup filesystem and can be
    looked up: no ``..`` or ``.`` component (upstream's glob would leave the mount:
    ``../*`` reaches the v1 hierarchies), no NUL, no lone surrogate (only a ``\\u``
    escape in the JSON makes one: config bytes that are not UTF-8 read as U+FFFD), and
    at most :data:`MAX_PATTERN_COMPONENTS` components."""
    shown = pattern.text if len(pattern.text) <= 60 else pattern.text[:57] + "..."
    where = f"cgroup pattern {shown!r}"
    if "\x00" in pattern.text:
        raise ValueError(f"{where} contains a NUL character")
    if _SURROGATE.search(pattern.text):
        raise ValueError(f"{where} is not valid Unicode (a lone surrogate)")
    if len(pattern.parts) > MAX_PATTERN_COMPONENTS:
        raise ValueError(
            f"{where} has more than {MAX_PATTERN_COMPONENTS} components; "
            "no cgroup path is that deep"
        )
    for part in pattern.parts:
        if part in (".", ".."):
            raise ValueError(
                f'{where} has a "{part}" component; patterns must stay inside the cgroup filesystem'
            )
