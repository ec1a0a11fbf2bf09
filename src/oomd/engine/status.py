"""The status view: what each ruleset watches, how far it is from acting, whom it would
kill - computed by the engine's own plugins as a dry evaluation (``explain``).

:func:`evaluate` runs between ticks on the tick's context (so readings are the ones
the tick saw, and the per-tick caches answer most reads), or, for ``oomd explain``,
on a context of its own. It changes no state: every plugin's ``explain`` is read-only
(oomd.engine.explain), log lines are silenced while it runs, and the context's
ruleset cgroup and action context are restored. The JSON schema is in docs/status.md.
"""

from __future__ import annotations

from oomd import log
from oomd.cgroup.context import OomdContext
from oomd.cgroup.system import SystemContext
from oomd.engine.engine import Engine
from oomd.engine.explain import closeness
from oomd.engine.kill_base import KillPlugin
from oomd.engine.plugin import Plugin
from oomd.engine.ruleset import Ruleset
from oomd.typeshim import TYPE_CHECKING

if TYPE_CHECKING:
    from typing import Any

#: Candidates shown per kill action.
DEFAULT_TOP = 3
SCHEMA_VERSION = 1


def _pressure(system: SystemContext, resource: str) -> dict[str, Any] | None:
    some = system.pressure(resource, False)
    full = system.pressure(resource, True)
    if some is None and full is None:
        return None
    return {
        kind: None if p is None else {"avg10": p.avg10, "avg60": p.avg60, "avg300": p.avg300}
        for kind, p in (("some", some), ("full", full))
    }


def host(system: SystemContext) -> dict[str, Any]:
    """Host memory and io PSI, MemAvailable and swap."""
    total, used = system.swaps()
    info = system.meminfo() or {}
    return {
        "memory_pressure": _pressure(system, "memory"),
        "io_pressure": _pressure(system, "io"),
        "mem_total": info.get("MemTotal"),
        "mem_available": info.get("MemAvailable"),
        "swap_total": total,
        "swap_used": used,
    }


def _plugin(plugin: Plugin, ctx: OomdContext, top: int) -> dict[str, Any]:
    view: dict[str, Any] = {"name": plugin.name}
    if plugin.origin is not None:
        view["origin"] = plugin.origin
    if plugin.unavailable is not None:
        view["unavailable"] = plugin.unavailable
        return view
    try:
        # A kill plugin's explain also takes how many candidates to show.
        details = (
            plugin.explain(ctx, top) if isinstance(plugin, KillPlugin) else plugin.explain(ctx)
        )
    except Exception as e:  # a plugin's explain must never break status
        view["error"] = f"{type(e).__name__}: {e}"
        return view
    if details is not None:
        view.update(details)
    return view


def _ruleset(ruleset: Ruleset, ctx: OomdContext, now: float, top: int) -> dict[str, Any]:
    view: dict[str, Any] = {
        "name": ruleset.name,
        "enabled": ruleset.enabled,
        "armed": now >= ruleset.paused_until,
        "paused_for_s": max(0.0, ruleset.paused_until - now),
        "suspended": ruleset._suspended is not None,
    }
    if ruleset.cgroups:
        view["per_cgroup"] = [
            {"cgroup": path.relative, **_ruleset_at(copy, ctx, now, top, path)}
            for path, copy in ruleset._copies.values()
        ]
    else:
        view.update(_ruleset_at(ruleset, ctx, now, top, None))
    if ruleset.dropins:
        view["dropins"] = [
            {"tag": tag, **_ruleset(dropin, ctx, now, top)} for tag, dropin in ruleset.dropins
        ]
    return view


def _ruleset_at(
    ruleset: Ruleset, ctx: OomdContext, now: float, top: int, cgroup: Any
) -> dict[str, Any]:
    saved = ctx.ruleset_cgroup
    ctx.ruleset_cgroup = cgroup
    try:
        groups = []
        for group in ruleset.detector_groups:
            groups.append(
                {
                    "name": group.name,
                    "firing": group.fired,
                    "last_fired_ago_s": None
                    if group.last_fired is None
                    else max(0.0, now - group.last_fired),
                    "detectors": [_plugin(d, ctx, top) for d in group.detectors],
                }
            )
        actions = [_plugin(a, ctx, top) for a in ruleset.actions]
    finally:
        ctx.ruleset_cgroup = saved
    return {"detector_groups": groups, "actions": actions}


def protected(engine: Engine) -> dict[str, Any]:
    """The config's ``protected_cgroups`` (issue 17): the patterns, and the cgroups
    they match now (relative paths, sorted; "/" for the root). Every kill plugin sees
    the same list; the daemon's own cgroup, protected apart from it, is not listed."""
    patterns: dict[str, Any] = {}
    for ruleset in engine.rulesets:
        for action in ruleset.actions:
            if isinstance(action, KillPlugin):
                for p in action.env.protected_cgroups:
                    patterns.setdefault(p.text, p)
    matching = sorted({path.relative or "/" for p in patterns.values() for path, _ in p.resolve()})
    return {"patterns": list(patterns), "matching": matching}


def evaluate(engine: Engine, ctx: OomdContext, top: int = DEFAULT_TOP) -> dict[str, Any]:
    """The status document's engine part: host, protected cgroups and rulesets."""
    previous = log.set_silenced(True)
    try:
        now = ctx.now()
        return {
            "schema": SCHEMA_VERSION,
            "host": host(ctx.system),
            "protected_cgroups": protected(engine),
            "rulesets": [_ruleset(r, ctx, now, top) for r in engine.rulesets],
        }
    finally:
        log.set_silenced(previous)


def closest(ruleset_view: dict[str, Any]) -> tuple[str, dict[str, Any]] | None:
    """The detector of a ruleset view closest to firing: (group name, detector view)."""
    best: tuple[float, str, dict[str, Any]] | None = None
    for where in ruleset_view.get("per_cgroup") or [ruleset_view]:
        for group in where.get("detector_groups", ()):
            for detector in group["detectors"]:
                score = closeness(detector)
                if best is None or score > best[0]:
                    best = (score, group["name"], detector)
    return None if best is None else (best[1], best[2])
