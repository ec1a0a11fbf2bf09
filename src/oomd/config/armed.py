"""Armed or not: whether each ruleset of a compiled engine can act on this host.

A ruleset is *armed* when at least one of its detector groups can fire (no detector
in it is disabled on this host), at least one of its actions can run, and - if it has
kill actions - at least one of them can work here and has a target whose parent
cgroup exists (a pattern may match nothing *yet*: ``system.slice/*`` is fine while
``system.slice`` exists). Everything else is *DISARMED*, with the reason. The daemon
says this at start, after every drop-in change and whenever it changes (a slice may
appear later); when no ruleset can ever act, or nothing can ever be killed, it is an
error (docs/compatibility.md, "Armed or disarmed").

Also here: which plugin may sit where (a kill plugin in a detector group kills every
tick it runs; a detector in an action chain only continues or stops it), and the
effective args ``oomd -c`` prints.
"""

from __future__ import annotations

import enum
import math
import os
from collections.abc import Callable

from oomd import log
from oomd.cgroup.path import CgroupPattern
from oomd.engine.engine import Engine
from oomd.engine.kill_base import KillPlugin
from oomd.engine.plugin import Detector, Plugin
from oomd.engine.ruleset import Ruleset

#: Actions that must never sit in a detector group besides the kill plugins: they act
#: on the whole host each time they run.
_DESTRUCTIVE = frozenset({"kernel_panic"})

#: How often the "nothing can act" error is repeated while it lasts.
REPEAT_SECONDS = 60.0


def role_problem(plugin: Plugin, role: str) -> tuple[bool, str] | None:
    """(is_error, message) when ``plugin`` is misplaced as a ``role`` ("detector" or
    "action"); None when it fits. A kill plugin (or kernel_panic) in a detector group
    is an error: upstream runs it as a detector, i.e. it kills every tick it runs. A
    detector in an action chain is a warning: it only continues or stops the chain."""
    if role == "detector" and (isinstance(plugin, KillPlugin) or plugin.name in _DESTRUCTIVE):
        what = "a kill plugin" if isinstance(plugin, KillPlugin) else "a destructive action"
        return True, (
            f"{what} used as a detector: it would act every tick the group runs, "
            'with no ruleset context; move it to "actions"'
        )
    if role == "action" and isinstance(plugin, Detector):
        return False, (
            'a detector used as an action: it only continues or stops the action chain; did you mean to put it in "detectors"?'
        )
    return None


# -- effective args -----------------------------------------------------------


def _fmt_value(value: object) -> str:
    if value is None:
        return "(unset)"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, enum.Enum):
        return str(value.name).lower()
    if isinstance(value, CgroupPattern):
        return value.text
    if isinstance(value, tuple | list):
        if not value:
            return "(none)"
        return ",".join(_fmt_value(v) for v in value)
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def effective_args(plugin: Plugin) -> list[str]:
    """``name=value`` for every declared arg, defaults filled in; ``(default)`` marks
    the ones the config did not give."""
    out = []
    for arg in type(plugin).args:
        value = getattr(plugin, arg.name, None)
        mark = "" if arg.name in plugin.provided else " (default)"
        out.append(f"{arg.name}={_fmt_value(value)}{mark}")
    return out


def describe(engine: Engine, named: Callable[[str], str] = str) -> list[str]:
    """What ``oomd -c`` prints for a compiled engine: each ruleset, each plugin with
    its effective args, and the action's own post_action_delay where it overrides;
    first, the config's ``protected_cgroups`` and which cgroups they protect now."""
    lines = protected_lines(engine)
    for ruleset in engine.rulesets:
        lines.append(f'ruleset "{ruleset.name}" (post_action_delay={ruleset.post_action_delay}s)')
        for group in ruleset.detector_groups:
            lines.append(f'  detector group "{group.name}":')
            for d in group.detectors:
                lines.append(f"    {named(d.name)}: " + " ".join(effective_args(d)))
        lines.append("  actions:")
        for a in ruleset.actions:
            own = getattr(a, "post_action_delay", None) if isinstance(a, KillPlugin) else None
            extra = (
                f" [after a kill this ruleset pauses {own}s (the action's own post_action_delay), not {ruleset.post_action_delay}s]"
                if own is not None
                else ""
            )
            lines.append(f"    {named(a.name)}: " + " ".join(effective_args(a)) + extra)
    return lines


def protected_lines(engine: Engine) -> list[str]:
    """``protected_cgroups: ...`` with the cgroups that match now (none when the
    config has no ``protected_cgroups``)."""
    from oomd.engine.status import protected  # -c and reloads only

    found = protected(engine)
    if not found["patterns"]:
        return []
    now = ", ".join(found["matching"]) if found["matching"] else "none exists yet"
    return [
        f"protected_cgroups: {', '.join(found['patterns'])} (never killed by any plugin, "
        f"descendants included, nor any cgroup holding one; matching now: {now})"
    ]


# -- armed analysis -----------------------------------------------------------


def _literal_parent(pattern: CgroupPattern) -> str:
    """The part of a pattern before its last component, up to the first wildcard:
    the directory that must exist for the pattern ever to match ("" is the root)."""
    literal = []
    for part in pattern.parts[:-1]:
        if any(c in part for c in "*?[{"):
            break
        literal.append(part)
    return "/".join(literal)


def _exists(fs: str, relative: str) -> bool:
    return os.path.isdir(os.path.join(fs, relative) if relative else fs)


def _patterns(plugin: Plugin) -> tuple[CgroupPattern, ...]:
    value = getattr(plugin, "cgroup", ())
    return (
        tuple(v for v in value if isinstance(v, CgroupPattern)) if isinstance(value, tuple) else ()
    )


def _shown(plugin: Plugin) -> str:
    patterns = _patterns(plugin)
    rel = tuple(getattr(plugin, "ruleset_cgroup", ()) or ())
    texts = [p.text or "/" for p in patterns] + [
        f"<ruleset cgroup>/{p.text}" for p in rel if isinstance(p, CgroupPattern)
    ]
    return f"{plugin.name}({','.join(texts)})" if texts else plugin.name


class Status:
    """One ruleset's verdict."""

    __slots__ = ("armed", "kills", "label", "line", "may_kill", "warnings")

    def __init__(
        self,
        label: str,
        armed: bool,
        kills: bool = False,
        may_kill: bool = False,
        line: str = "",
        warnings: list[str] | None = None,
    ) -> None:
        self.label = label
        self.armed = armed
        #: The ruleset has kill actions configured (usable here or not).
        self.kills = kills
        #: Armed, and at least one kill action has a target that can exist.
        self.may_kill = may_kill
        self.line = line
        self.warnings: list[str] = [] if warnings is None else warnings


def analyse_ruleset(ruleset: Ruleset, label: str) -> Status:
    reasons: list[str] = []
    warnings: list[str] = []
    live_groups = []
    dead: list[str] = []
    for group in ruleset.detector_groups:
        off = [d for d in group.detectors if d.unavailable is not None]
        if not group.detectors:
            dead.append(f'group "{group.name}" has no detectors')
        elif off:
            dead.append(
                f'group "{group.name}": {off[0].name} cannot work here ({off[0].unavailable})'
            )
        else:
            live_groups.append(group)
        for d in group.detectors:
            for p in _patterns(d):
                if not p.has_wildcard and not _exists(p.fs, "/".join(p.parts)):
                    warnings.append(
                        f"{label}: {d.name} watches {p.text}, which does not exist (yet)"
                    )
                elif p.has_wildcard and not _exists(p.fs, _literal_parent(p)):
                    warnings.append(
                        f"{label}: {d.name} watches {p.text}, but {_literal_parent(p)} does not exist (yet)"
                    )
    if not ruleset.detector_groups:
        reasons.append("it has no detector groups")
    elif not live_groups:
        reasons.append("no detector group can fire: " + "; ".join(dead))
    usable = [a for a in ruleset.actions if a.unavailable is None]
    killers = [a for a in ruleset.actions if isinstance(a, KillPlugin)]
    if not ruleset.actions:
        reasons.append("it has no actions")
    elif not usable:
        reasons.append(
            "no action can work here: "
            + "; ".join(f"{a.name} ({a.unavailable})" for a in ruleset.actions)
        )
    targets: list[str] = []
    missing: list[str] = []
    for a in killers:
        if a.unavailable is not None:
            continue
        for p in tuple(getattr(a, "ruleset_cgroup", ()) or ()):
            if isinstance(p, CgroupPattern):
                targets.append(f"<ruleset cgroup>/{p.text} ({a.name})")
        for p in _patterns(a):
            parent = _literal_parent(p)
            if ruleset.cgroups or _exists(p.fs, parent):
                targets.append(f"{p.text} ({a.name})")
            else:
                missing.append(f"{p.text} ({parent} does not exist)")
    if ruleset.cgroups and not any(_exists(p.fs, _literal_parent(p)) for p in ruleset.cgroups):
        reasons.append(
            "its ruleset cgroup "
            + ",".join(p.text for p in ruleset.cgroups)
            + " cannot match anything (parent missing)"
        )
    if killers and usable and not targets:
        disabled = [f"{a.name} ({a.unavailable})" for a in killers if a.unavailable is not None]
        reasons.append("nothing to kill: " + "; ".join(disabled + missing))
    elif missing:
        warnings.extend(f"{label}: cannot kill {m}" for m in missing)
    if reasons:
        return Status(
            label,
            False,
            bool(killers),
            False,
            f"{label}: DISARMED because " + "; ".join(reasons),
            warnings,
        )
    watching = ", ".join(dict.fromkeys(_shown(d) for g in live_groups for d in g.detectors))
    if targets:
        acts = "may kill " + ", ".join(targets)
    else:
        acts = "acts by " + " -> ".join(a.name for a in usable) + " (kills nothing)"
    return Status(
        label,
        True,
        bool(killers),
        bool(targets),
        f"{label}: armed, watching {watching}; {acts}",
        warnings,
    )


def analyse(engine: Engine) -> list[Status]:
    """Every ruleset's verdict, drop-in rulesets included (a base ruleset with
    ``disable-on-drop-in`` is left out while drop-ins replace it)."""
    out = []
    for ruleset in engine.rulesets:
        for tag, merged in ruleset.dropins:
            out.append(analyse_ruleset(merged, f'ruleset "{ruleset.name}" (drop-in {tag})'))
        if ruleset.enabled:
            out.append(analyse_ruleset(ruleset, f'ruleset "{ruleset.name}"'))
    return out


def problem(statuses: list[Status], rulesets: int) -> str | None:
    """The error when nothing can ever act (None when something can)."""
    if rulesets == 0:
        return 'the config has no rulesets: oomd will do nothing (is the key spelled "rulesets"?)'
    if not any(s.armed for s in statuses):
        return "no ruleset can ever act on this host: every ruleset is DISARMED"
    if any(s.kills for s in statuses) and not any(s.may_kill for s in statuses):
        return "nothing can ever be killed on this host: every ruleset that kills is DISARMED"
    return None


class Monitor:
    """The daemon's watch over its own armed state: logs every ruleset's verdict when
    it changes and, while nothing can act, an error line at most every
    ``repeat`` seconds. Call :meth:`check` at start and each tick."""

    def __init__(
        self, out: Callable[[str], None] = log.always, repeat: float = REPEAT_SECONDS
    ) -> None:
        self.out = out
        self.repeat = repeat
        self._lines: list[str] | None = None
        self._error_at = -math.inf
        self.error: str | None = None

    def check(self, engine: Engine, now: float) -> None:
        statuses = analyse(engine)
        lines = [s.line for s in statuses] + [w for s in statuses for w in s.warnings]
        error = problem(statuses, len(engine.rulesets))
        changed = lines != self._lines
        if changed:
            for s in statuses:
                self.out(s.line)
                for w in s.warnings:
                    self.out("Warning: " + w)
            self._lines = lines
        if error is not None and (
            changed or error != self.error or now - self._error_at >= self.repeat
        ):
            self.out(f"Error: {error} (re-checked every tick; repeated every {self.repeat:g}s)")
            self._error_at = now
        elif error is None and self.error is not None:
            self.out("oomd is armed again")
        self.error = error
