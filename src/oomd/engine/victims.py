"""Who may be a victim, and who goes first, as the config says (issue 17).

* ``protected_cgroups`` (top level): cgroups that no kill plugin ever kills. A cgroup
  is protected when it or one of its ancestors matches a pattern (descendants of a
  protected cgroup are protected), and also when one of its descendants that exists
  now matches (killing an ancestor would kill the protected cgroup with it).
* ``prefer``/``avoid`` (kill plugin args): the meaning of the ``trusted.oomd_prefer``/
  ``trusted.oomd_avoid`` xattrs, for the cgroups a pattern matches (the cgroup itself,
  as the xattr is read on the cgroup itself). When the config and an xattr both speak
  of a cgroup, the config wins; ``avoid`` wins over ``prefer`` when both patterns
  match the same cgroup.
"""

from __future__ import annotations

from collections.abc import Sequence

from oomd.cgroup.context import KillPreference
from oomd.cgroup.path import CgroupPath, CgroupPattern
from oomd.typeshim import Protocol, TypeVar


def _prefix_matches(pattern: CgroupPattern, parts: tuple[str, ...]) -> bool:
    """Whether the first ``len(parts)`` components of ``pattern`` match ``parts``."""
    prefix = CgroupPattern(pattern.fs, "/".join(pattern.parts[: len(parts)]))
    return prefix.matches(CgroupPath(pattern.fs, parts))


def protecting_pattern(
    patterns: Sequence[CgroupPattern], path: CgroupPath, descendants: bool = True
) -> CgroupPattern | None:
    """The pattern that protects ``path``, or None. ``descendants``: also check whether
    an existing cgroup below ``path`` matches (reads the filesystem; the check made
    right before a kill)."""
    parts = path.parts
    for pattern in patterns:
        n = len(pattern.parts)
        if n <= len(parts):
            if pattern.matches(CgroupPath(pattern.fs, parts[:n])):
                return pattern
        elif (
            descendants
            and _prefix_matches(pattern, parts)
            and any(path.is_ancestor_of(found) for found, _ in pattern.resolve())
        ):
            return pattern
    return None


class _HasPathAndPreference(Protocol):
    @property
    def path(self) -> CgroupPath: ...

    def kill_preference(self) -> KillPreference: ...


C = TypeVar("C", bound=_HasPathAndPreference)


def config_preference(
    prefer: Sequence[CgroupPattern], avoid: Sequence[CgroupPattern], path: CgroupPath
) -> KillPreference | None:
    """AVOID or PREFER when a pattern matches ``path`` itself (avoid first), else None."""
    if any(p.matches(path) for p in avoid):
        return KillPreference.AVOID
    if any(p.matches(path) for p in prefer):
        return KillPreference.PREFER
    return None


def effective_preference(
    prefer: Sequence[CgroupPattern], avoid: Sequence[CgroupPattern], cg: _HasPathAndPreference
) -> KillPreference:
    """The config's preference for ``cg`` if it has one, else its xattrs'."""
    said = config_preference(prefer, avoid, cg.path)
    return cg.kill_preference() if said is None else said


def with_config_preferences(
    ranked: list[C], prefer: Sequence[CgroupPattern], avoid: Sequence[CgroupPattern]
) -> list[C]:
    """``ranked`` (best first, as a heuristic ordered it) re-ordered so that every
    PREFER cgroup comes before every NORMAL one before every AVOID one, the config's
    word overriding the xattrs'; within a class the heuristic's order stands."""
    if not prefer and not avoid:
        return ranked
    return sorted(ranked, key=lambda c: -int(effective_preference(prefer, avoid, c)))
