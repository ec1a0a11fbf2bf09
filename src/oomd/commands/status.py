"""``oomd status [-D RUNTIME_DIR] [--json] [--top N]``: ask the running daemon what it
watches, how far each ruleset is from acting and whom it would kill.

The daemon answers on ``<runtime-dir>/oomd-status.socket`` (root only, mode 0600)
with a document computed between two ticks by its own plugins, changing nothing
(docs/status.md has the schema and an example). Text output is :func:`render`.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Sequence
from typing import Any

from oomd.options import DEFAULT_RUNTIME_DIR, STATUS_SOCKET_NAME


def _pct(p: dict[str, Any] | None) -> str:
    if not p:
        return "-"
    return f"{p['avg10']:.2f}/{p['avg60']:.2f}"


def _mb(value: Any) -> str:
    return "-" if not isinstance(value, int) else f"{value >> 20}MB"


def _ago(seconds: float | None) -> str:
    if seconds is None:
        return "never"
    return f"{seconds:.0f}s ago"


def _numbers(entry: dict[str, Any]) -> str:
    shown = []
    for key, value in entry.items():
        if key in ("cgroup", "reason"):
            continue
        if key in ("usage", "protection", "effective_usage", "swap", "swap_excess"):
            shown.append(f"{key}={_mb(value)}")
        elif isinstance(value, float):
            shown.append(f"{key}={value:.2f}")
        else:
            shown.append(f"{key}={value}")
    return " ".join(shown)


def _plugin_lines(view: dict[str, Any], indent: str) -> list[str]:
    from oomd.observe import detector_summary

    if "top" not in view:
        return [indent + detector_summary(view)]
    head = f"{indent}{view['name']}{' (dry)' if view.get('dry') else ''}: "
    head += f"{view.get('considered', 0)} candidates"
    lines = [head]
    if view.get("waiting_for_prekill_hook"):
        lines.append(f"{indent}  waiting for a prekill hook on {view['waiting_for_prekill_hook']}")
    for rank, entry in enumerate(view["top"], 1):
        lines.append(f"{indent}  {rank}. {entry['cgroup']}  {_numbers(entry)}")
    victim = view.get("victim")
    if victim is None:
        lines.append(f"{indent}  would kill: nothing (no killable candidate)")
    else:
        lines.append(f"{indent}  would kill {victim['cgroup']}: {victim['reason']}")
    return lines


def _ruleset_lines(view: dict[str, Any], indent: str = "") -> list[str]:
    state = "armed" if view["armed"] else f"paused for {view['paused_for_s']:.0f}s more"
    if not view.get("enabled", True):
        state = "disabled by a drop-in"
    lines = [f'{indent}ruleset "{view["name"]}": {state}']
    for where in view.get("per_cgroup") or [view]:
        inner = indent + "  "
        if "per_cgroup" in view:
            lines.append(f"{inner}for cgroup {where['cgroup']}:")
            inner += "  "
        for group in where.get("detector_groups", ()):
            firing = "firing" if group["firing"] else "not firing"
            lines.append(
                f'{inner}detector group "{group["name"]}": {firing}, last fired '
                f"{_ago(group['last_fired_ago_s'])}"
            )
            for detector in group["detectors"]:
                lines += _plugin_lines(detector, inner + "  ")
        if where.get("actions"):
            lines.append(f"{inner}actions:")
            for action in where["actions"]:
                lines += _plugin_lines(action, inner + "  ")
    for dropin in view.get("dropins", ()):
        lines.append(f"{indent}  drop-in {dropin['tag']}:")
        lines += _ruleset_lines(dropin, indent + "    ")
    return lines


def render(doc: dict[str, Any]) -> str:
    """The status document for a terminal."""
    host = doc["host"]
    mem, io = host.get("memory_pressure") or {}, host.get("io_pressure") or {}
    lines = [
        f"host: memory pressure some {_pct(mem.get('some'))} full {_pct(mem.get('full'))}"
        f" (avg10/avg60 %), io some {_pct(io.get('some'))} full {_pct(io.get('full'))}",
        f"      MemAvailable {_mb(host.get('mem_available'))} of {_mb(host.get('mem_total'))},"
        f" swap used {_mb(host.get('swap_used'))} of {_mb(host.get('swap_total'))}",
    ]
    daemon = doc.get("daemon")
    if daemon:
        lines.append(
            f"daemon: pid {daemon['pid']}, up {daemon['uptime_s']:.0f}s, interval "
            f"{daemon['interval_s']}s, last tick {daemon['last_tick_duration_s'] * 1000:.1f}ms"
        )
    shielded = doc.get("protected_cgroups") or {}
    if shielded.get("patterns"):
        now = ", ".join(shielded["matching"]) or "none exists yet"
        lines.append(
            f"protected: {', '.join(shielded['patterns'])} (never killed, descendants "
            f"included; matching now: {now})"
        )
    for ruleset in doc["rulesets"]:
        lines += _ruleset_lines(ruleset)
    counters = doc.get("counters")
    if counters:
        ticks = counters["ticks"]
        errors = sum(counters["plugin_errors"].values())
        lines.append(
            f"counters: kills {counters['kills']}, ticks {ticks['scheduled']} scheduled + "
            f"{ticks['early']} early, plugin errors {errors}"
        )
    if "last_kill" in doc:
        kill = doc["last_kill"]
        if kill is None:
            lines.append("last kill: none")
        else:
            when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(kill["kill_time"]))
            lines.append(
                f"last kill: {when} {kill['cgroup']} ({_mb(kill['usage'])}) by "
                f"{'(dry) ' if kill['dry'] else ''}{kill['killer']} for ruleset "
                f'"{kill["ruleset"]}" detector group "{kill["detector_group"]}"'
                f" uuid {kill['kill_uuid']}"
            )
    return "\n".join(lines) + "\n"


def print_doc(doc: dict[str, Any], as_json: bool) -> None:
    if as_json:
        import json

        sys.stdout.write(json.dumps(doc, indent=2, sort_keys=True) + "\n")
    else:
        sys.stdout.write(render(doc))
    sys.stdout.flush()


def main(argv: Sequence[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="oomd status",
        description="Ask the running daemon what it watches, how far each ruleset is "
        "from acting and whom it would kill (computed between ticks, changing nothing).",
    )
    parser.add_argument(
        "-D",
        "--runtime-dir",
        default=DEFAULT_RUNTIME_DIR,
        help=f"the daemon's runtime directory (default: {DEFAULT_RUNTIME_DIR})",
    )
    parser.add_argument("--json", action="store_true", help="one JSON document (docs/status.md)")
    parser.add_argument("--top", type=int, default=3, help="candidates per kill action (3)")
    args = parser.parse_args(list(argv))
    from oomd.observe import StatusClientError, request_status

    try:
        doc = request_status(os.path.join(args.runtime_dir, STATUS_SOCKET_NAME), max(0, args.top))
    except StatusClientError as e:
        sys.stderr.write(f"{e}\n")
        return 1
    print_doc(doc, args.json)
    return 0
