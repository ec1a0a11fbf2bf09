"""One self-contained HTML page of a trace replayed with a config.

The plots are SVG drawn here, on the server side, with no dependency: the page has
no script, no CDN and no font to fetch, so it opens offline, in any browser, years
later, and the daemon's package stays stdlib-only. A plotting library would buy zoom
and tooltips; an SVG ``<title>`` on each kill marker gives the tooltip that matters.
"""

from __future__ import annotations

import html
import time
from dataclasses import dataclass, field

from oomd.cgroup import fs
from oomd.replay import Materialiser, ReplayResult, run_replay
from oomd.trace import TickData, Trace

WIDTH, HEIGHT, LEFT, RIGHT, TOP, BOTTOM = 960, 200, 70, 20, 14, 26
COLORS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd", "#8c564b")
MAX_CGROUPS = 12


@dataclass
class Series:
    label: str
    points: list[tuple[float, float]] = field(default_factory=list)


@dataclass
class Collected:
    times: list[float] = field(default_factory=list)
    #: cgroup path -> metric -> series
    cgroups: dict[str, dict[str, Series]] = field(default_factory=dict)
    host: dict[str, Series] = field(default_factory=dict)


def _collect(trace: Trace) -> tuple[Collected, object]:
    out = Collected()
    paths = {cid: info[0] for cid, info in trace.cgroups.items()}

    def observe(tick: TickData, mat: Materialiser) -> None:
        t = tick.time - trace.ticks[0][1]
        out.times.append(t)
        for (cid, name), content in mat.state.items():
            if content is None:
                continue
            if cid is None:
                if name == "meminfo":
                    info = fs.parse_meminfo(content)
                    for key in ("MemAvailable", "SwapFree"):
                        if key in info:
                            _add(out.host, key + " (MiB)", t, info[key] / 2**20)
                elif name == "pressure/memory":
                    p = fs.parse_pressure(content, True)
                    if p is not None:
                        _add(out.host, "memory PSI full avg10 (%)", t, p.avg10)
                continue
            path = paths.get(cid)
            if path is None:
                continue
            metrics = out.cgroups.setdefault(path or "/", {})
            if name == "memory.pressure":
                p = fs.parse_pressure(content, True)
                if p is not None:
                    _add(metrics, "avg10", t, p.avg10)
                    _add(metrics, "avg60", t, p.avg60)
            elif name == "memory.current":
                value = fs.parse_single_int(content)
                if value is not None:
                    _add(metrics, "memory.current (MiB)", t, value / 2**20)

    return out, observe


def _add(metrics: dict[str, Series], label: str, t: float, value: float) -> None:
    metrics.setdefault(label, Series(label)).points.append((t, value))


def _svg(
    series: list[Series],
    t_end: float,
    *,
    threshold: float | None = None,
    held: list[tuple[float, float]] = (),  # type: ignore[assignment]
    kills: list[tuple[float, str]] = (),  # type: ignore[assignment]
    unit: str = "",
) -> str:
    values = [v for s in series for _, v in s.points]
    top = max([*values, threshold or 0.0, 1e-9])
    top *= 1.1
    w, h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    span = max(t_end, 1e-9)

    def x(t: float) -> float:
        return LEFT + w * t / span

    def y(v: float) -> float:
        return TOP + h * (1 - v / top)

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" '
        f'viewBox="0 0 {WIDTH} {HEIGHT}" role="img">',
        f'<rect x="{LEFT}" y="{TOP}" width="{w}" height="{h}" fill="#fafafa" stroke="#ccc"/>',
    ]
    for start, end in held:
        parts.append(
            f'<rect class="held" x="{x(start):.1f}" y="{TOP}" width="{max(1.0, x(end) - x(start)):.1f}" '
            f'height="{h}" fill="#f5c6c6" opacity="0.6"><title>detector held</title></rect>'
        )
    for frac in (0, 0.5, 1):
        v = top / 1.1 * frac
        parts.append(
            f'<text x="{LEFT - 6}" y="{y(v) + 4:.1f}" font-size="11" text-anchor="end">'
            f"{v:.0f}{html.escape(unit)}</text>"
        )
    for frac in (0, 0.25, 0.5, 0.75, 1):
        t = span * frac
        parts.append(
            f'<text x="{x(t):.1f}" y="{HEIGHT - 8}" font-size="11" text-anchor="middle">'
            f"+{t:.0f}s</text>"
        )
    for index, s in enumerate(series):
        if not s.points:
            continue
        color = COLORS[index % len(COLORS)]
        d = " ".join(
            f"{'M' if i == 0 else 'L'}{x(t):.1f},{y(v):.1f}" for i, (t, v) in enumerate(s.points)
        )
        parts.append(
            f'<path class="series" d="{d}" fill="none" stroke="{color}" stroke-width="1.5"/>'
        )
        parts.append(
            f'<text x="{LEFT + 8 + 170 * index}" y="{TOP + 12}" font-size="11" fill="{color}">'
            f"{html.escape(s.label)}</text>"
        )
    if threshold is not None:
        parts.append(
            f'<line class="threshold" x1="{LEFT}" x2="{LEFT + w}" y1="{y(threshold):.1f}" '
            f'y2="{y(threshold):.1f}" stroke="#d62728" stroke-dasharray="6 4">'
            f"<title>threshold {threshold:g}</title></line>"
        )
    for t, reason in kills:
        parts.append(
            f'<line class="kill" x1="{x(t):.1f}" x2="{x(t):.1f}" y1="{TOP}" y2="{TOP + h}" '
            f'stroke="#000" stroke-width="2"><title>{html.escape(reason)}</title></line>'
        )
    parts.append("</svg>")
    return "".join(parts)


def _held(series: list[tuple[float, bool]], step: float) -> list[tuple[float, float]]:
    spans: list[tuple[float, float]] = []
    start: float | None = None
    for t, on in series:
        if on and start is None:
            start = t
        elif not on and start is not None:
            spans.append((start, t))
            start = None
    if start is not None and series:
        spans.append((start, series[-1][0] + step))
    return spans


def render(trace: Trace, config_path: str) -> str:
    """The page for ``trace`` replayed with the config at ``config_path``."""
    collected, observe = _collect(trace)
    result: ReplayResult = run_replay(trace, config_path, observe=observe)  # type: ignore[arg-type]
    t0 = trace.ticks[0][1]
    t_end = max(collected.times[-1] if collected.times else 0.0, 1.0)
    kills = [(k.time - t0, k.line) for k in result.kills]
    victims = {k.victim for k in result.kills}
    recorded = [e for e in trace.events if e.kind == "kill"]
    # Which cgroups: those a detector with a threshold names, the victims, then the
    # largest by peak memory.current.
    named = {p for _, patterns in result.thresholds.values() for p in patterns}
    by_size = sorted(
        collected.cgroups,
        key=lambda c: (
            -max(
                (v for _, v in collected.cgroups[c].get("memory.current (MiB)", Series("")).points),
                default=0.0,
            )
        ),
    )
    chosen = [c for c in collected.cgroups if c in named or c in victims]
    chosen += [c for c in by_size if c not in chosen][: max(0, MAX_CGROUPS - len(chosen))]
    step = trace.interval
    body = []
    started = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(trace.ticks[0][2]))
    body.append(f"<h1>oomd report: {html.escape(trace.path)}</h1>")
    body.append(
        f"<p>Recorded on {html.escape(trace.meta.get('hostname', '?'))} "
        f"(kernel {html.escape(trace.meta.get('kernel', '?'))}) from {started}, "
        f"{len(trace.ticks)} ticks over {t_end:.0f} s; replayed with "
        f"<code>{html.escape(config_path)}</code>.</p>"
    )
    body.append("<h2>Kills</h2><ul>")
    for kill in result.kills:
        body.append(
            f'<li class="kill">tick {kill.tick} (+{kill.time - t0:.1f} s): '
            f"<code>{html.escape(kill.line)}</code>"
        )
        body.append(
            "<details><summary>the ranking behind it</summary><pre>"
            + html.escape("\n".join(kill.ranking))
            + "</pre></details></li>"
        )
    if not result.kills:
        body.append("<li>this config kills nothing over this trace</li>")
    body.append("</ul>")
    if recorded:
        body.append("<p>The recording's daemon killed:</p><ul>")
        body.extend(f"<li><code>{html.escape(e.line)}</code></li>" for e in recorded)
        body.append("</ul>")
    body.append("<h2>Host</h2>")
    host = [s for s in collected.host.values() if "MiB" in s.label]
    if host:
        body.append(_svg(host, t_end, kills=kills, unit=""))
    psi = collected.host.get("memory PSI full avg10 (%)")
    if psi is not None:
        body.append(_svg([psi], t_end, kills=kills, unit="%"))
    for path in chosen:
        metrics = collected.cgroups[path]
        body.append(f"<h2>{html.escape(path)}</h2>")
        detectors = [
            (name, threshold)
            for name, (threshold, patterns) in result.thresholds.items()
            if path in patterns
        ]
        pressure = [metrics[k] for k in ("avg10", "avg60") if k in metrics]
        if pressure:
            for name, threshold in detectors or [("", None)]:  # type: ignore[list-item]
                if name:
                    body.append(
                        f"<p class='detector'>{html.escape(name)}: threshold {threshold:g}</p>"
                    )
                held = _held(result.detectors.get(name, []), step) if name else []
                body.append(
                    _svg(
                        [Series("memory PSI full " + s.label, s.points) for s in pressure],
                        t_end,
                        threshold=threshold,
                        held=held,
                        kills=kills,
                        unit="%",
                    )
                )
        current = metrics.get("memory.current (MiB)")
        if current is not None:
            body.append(_svg([current], t_end, kills=kills))
    style = (
        "body{font-family:sans-serif;margin:1.5em;max-width:1000px}"
        "pre{font-size:11px;background:#f4f4f4;padding:.5em;overflow-x:auto}"
        "code{font-size:12px}svg{display:block;margin:.3em 0 1em}"
    )
    return (
        "<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'>"
        f"<title>oomd report</title><style>{style}</style></head><body>"
        + "\n".join(body)
        + "</body></html>\n"
    )


__all__ = ["render"]
