"""The built-in default policy, fitted to the host it runs on.

Upstream's desktop policy assumes a systemd host with the memory controller on
cgroup2 and ``user.slice``/``system.slice``. Where that is not so (a hybrid host:
cgroup2 at ``/sys/fs/cgroup/unified`` without the memory controller; a container
without slices) it would run and protect nothing. :func:`adapt_policy` takes the
parsed policy (wherever its text is stored) and the host's facts and returns a policy
that can act here, with one note per change:

* a detector that needs a missing controller is dropped from its group (the group's
  pressure detector remains); a kill action that needs one is replaced by
  ``kill_by_pressure`` on memory pressure, which needs only PSI, with the same targets
  and kill args; any other such action is dropped;
* cgroup patterns whose parent does not exist are dropped; a detector left with none
  watches the whole host (``/``), a kill action left with none may kill any top-level
  cgroup (``*``).

Configs given by the operator are never changed: they get the armed summary instead.
"""

from __future__ import annotations

import os

from oomd.config.ir import ConfigIR, DetectorGroupIR, PluginIR, RulesetIR
from oomd.engine.kill_base import KILL_ARGS, KillPlugin
from oomd.engine.plugin import Plugin
from oomd.plugins import registry
from oomd.typeshim import NamedTuple

#: What a kill action that cannot work here becomes: ranking by memory pressure
#: needs PSI only, no memory controller.
FALLBACK_KILLER = "kill_by_pressure"
_KILL_ARG_NAMES = frozenset(a.name for a in KILL_ARGS)


class HostFacts(NamedTuple):
    """What the default policy's choice depends on."""

    cgroup_fs: str
    #: The controllers enabled at ``cgroup_fs`` (None: unknown, assume all).
    controllers: frozenset[str] | None

    def has_cgroup(self, relative: str) -> bool:
        return os.path.isdir(os.path.join(self.cgroup_fs, relative) if relative else self.cgroup_fs)

    def pattern_can_match(self, pattern: str) -> bool:
        """A literal cgroup must exist; a wildcard pattern needs the literal part
        before its first wildcard (it may match nothing yet)."""
        parts = [p for p in pattern.split("/") if p]
        if not any(c in pattern for c in "*?[{"):
            return self.has_cgroup("/".join(parts))
        literal = []
        for part in parts[:-1]:
            if any(c in part for c in "*?[{"):
                break
            literal.append(part)
        return self.has_cgroup("/".join(literal))


def _class(name: str) -> type[Plugin] | None:
    try:
        return registry.get(name)
    except registry.PluginLoadError:
        return None


def _missing(cls: type[Plugin] | None, host: HostFacts) -> frozenset[str]:
    if cls is None or host.controllers is None:
        return frozenset()
    return cls.needs_controllers - host.controllers


def _fit_cgroups(
    plugin: PluginIR, host: HostFacts, fallback: str, where: str, notes: list[str]
) -> PluginIR:
    text = plugin.args.get("cgroup")
    if not text:
        return plugin
    patterns = [p for p in text.split(",") if p]
    kept = [p for p in patterns if host.pattern_can_match(p)]
    if kept == patterns:
        return plugin
    gone = ", ".join(p for p in patterns if p not in kept)
    if not kept:
        kept = [fallback]
        scope = "the whole host" if fallback == "/" else "any top-level cgroup"
        notes.append(f"{where}: {plugin.name}: {gone} not on this host; uses {fallback} ({scope})")
    else:
        notes.append(f"{where}: {plugin.name}: {gone} not on this host; dropped")
    return plugin._replace(args={**plugin.args, "cgroup": ",".join(kept)})


def _fit_ruleset(rs: RulesetIR, host: HostFacts, notes: list[str]) -> RulesetIR | None:
    where = f'ruleset "{rs.name}"'
    groups = []
    for group in rs.detector_groups:
        detectors = []
        for det in group.detectors:
            missing = _missing(_class(det.name), host)
            if missing:
                notes.append(
                    f'{where}: group "{group.name}": {det.name} dropped (needs the '
                    f"{', '.join(sorted(missing))} controller, not enabled at {host.cgroup_fs})"
                )
                continue
            detectors.append(_fit_cgroups(det, host, "/", where, notes))
        if detectors:
            groups.append(DetectorGroupIR(group.name, tuple(detectors)))
        else:
            notes.append(
                f'{where}: group "{group.name}" dropped (none of its detectors can work here)'
            )
    actions = []
    for action in rs.actions:
        cls = _class(action.name)
        missing = _missing(cls, host)
        if missing and cls is not None and issubclass(cls, KillPlugin):
            args = {k: v for k, v in action.args.items() if k in _KILL_ARG_NAMES}
            replacement = PluginIR(FALLBACK_KILLER, {**args, "resource": "memory"})
            notes.append(
                f"{where}: {action.name} needs the {', '.join(sorted(missing))} controller, "
                f"not enabled at {host.cgroup_fs}; uses {FALLBACK_KILLER} (memory pressure) instead"
            )
            action = replacement
        elif missing:
            notes.append(
                f"{where}: action {action.name} dropped (needs {', '.join(sorted(missing))})"
            )
            continue
        fitted = _class(action.name)
        fallback = "*" if fitted is not None and issubclass(fitted, KillPlugin) else "/"
        actions.append(_fit_cgroups(action, host, fallback, where, notes))
    if not groups or not actions:
        notes.append(f"{where} dropped (nothing of it can work here)")
        return None
    return rs._replace(detector_groups=tuple(groups), actions=tuple(actions))


def adapt_policy(ir: ConfigIR, host: HostFacts) -> tuple[ConfigIR, list[str]]:
    """The policy ``ir`` fitted to ``host``, and a note per change (empty when the
    host has everything the policy names)."""
    notes: list[str] = []
    rulesets = []
    for rs in ir.rulesets:
        fitted = _fit_ruleset(rs, host, notes)
        if fitted is not None:
            rulesets.append(fitted)
    return ir._replace(rulesets=tuple(rulesets)), notes


def to_json(ir: ConfigIR) -> dict[str, object]:
    """A config as JSON data (what ``oomd`` would read back to the same IR)."""

    def plugin(p: PluginIR) -> dict[str, object]:
        return {"name": p.name, "args": {**p.args, **{k: list(v) for k, v in p.list_args.items()}}}

    rulesets = []
    for rs in ir.rulesets:
        data: dict[str, object] = {
            "name": rs.name,
            "detectors": [[g.name, *(plugin(d) for d in g.detectors)] for g in rs.detector_groups],
            "actions": [plugin(a) for a in rs.actions],
        }
        for key, value in (
            ("silence-logs", rs.silence_logs),
            ("post_action_delay", rs.post_action_delay),
            ("prekill_hook_timeout", rs.prekill_hook_timeout),
            ("cgroup", rs.cgroup),
            ("xattr_filter", rs.xattr_filter),
        ):
            if value:
                data[key] = value
        if rs.dropin.detectors or rs.dropin.actions or rs.dropin.disable_on_drop_in:
            data["drop-in"] = {
                "detectors": rs.dropin.detectors,
                "actions": rs.dropin.actions,
                "disable-on-drop-in": rs.dropin.disable_on_drop_in,
            }
        rulesets.append(data)
    out: dict[str, object] = {"rulesets": rulesets}
    if ir.prekill_hooks:
        out["prekill_hooks"] = [plugin(h) for h in ir.prekill_hooks]
    return out
