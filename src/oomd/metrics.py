"""Prometheus metrics (``--metrics-address HOST:PORT``), with ``prometheus_client``
(the optional extra ``oomd[prometheus]``), imported only when the flag is given.

Scraping never slows a tick: the HTTP server runs in its own thread; the tick thread
only bumps a few counters (kill events, the tick duration histogram). The rest - the
rulesets armed, detector groups firing, the watched cgroups' pressure - is built by
the first scrape after a tick, under the tick lock (between ticks, from the values
the tick read and cached), and reused by later scrapes of the same tick: nobody
scraping costs nothing, and a scrape that comes during a tick waits for its end (at
most LOCK_WAIT_S, then it serves the previous snapshot).

Cardinality is bounded: one series per ruleset, detector group, kill plugin and
plugin (fixed by the config), and at most :data:`MAX_CGROUPS` watched cgroups (the
most pressured ones when detectors watch more; ``oomd_watched_cgroups`` says how many
there are). Metric names: docs/status.md.
"""

from __future__ import annotations

import heapq
import threading
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any, Protocol

from oomd import events
from oomd.cgroup.fs import ZERO_PRESSURE
from oomd.engine import guard

if TYPE_CHECKING:
    from oomd.cgroup.context import OomdContext
    from oomd.engine.engine import Engine
    from oomd.stats import Stats


class Observer(Protocol):
    """What metrics read of the daemon's observer (oomd.observe.Observer)."""

    engine: Engine
    ctx: OomdContext
    stats: Stats
    ticks: dict[str, int]
    lock: threading.Lock
    after_tick: Callable[[float], None] | None


#: At most this many cgroups get pressure series.
MAX_CGROUPS = 100
#: A scrape waits at most this long for a running tick to end (then it serves the
#: previous tick's snapshot).
LOCK_WAIT_S = 1.0
#: Tick duration histogram buckets, seconds.
BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
_RESOURCES = ("memory", "io")

INSTALL_HINT = (
    "--metrics-address needs the Python package prometheus_client: "
    "pip install 'oomd[prometheus]' (Debian: apt install python3-prometheus-client)"
)


class MetricsError(Exception):
    pass


def parse_address(text: str) -> tuple[str, int]:
    """``HOST:PORT`` (``[::1]:9100`` for IPv6); raises MetricsError."""
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit() or not 0 < int(port) < 65536:
        raise MetricsError(f"{text!r} is not HOST:PORT (e.g. 127.0.0.1:9101)")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    if not host:
        raise MetricsError(f"{text!r} names no host (e.g. 127.0.0.1:9101)")
    return host, int(port)


def available() -> bool:
    """Whether prometheus_client can be imported (checked at command-line parsing,
    without importing it)."""
    import importlib.util

    return importlib.util.find_spec("prometheus_client") is not None


class Snapshot:
    """The per-tick part of a scrape: rulesets armed, detector groups firing, the
    watched cgroups' pressure - read off the last tick's context."""

    __slots__ = ("armed", "firing", "pressure", "tick", "watched")

    def __init__(self, tick: int = -1) -> None:
        self.tick = tick
        self.armed: list[tuple[str, float]] = []
        self.firing: list[tuple[str, str, float]] = []
        self.pressure: list[tuple[str, str, Any, Any]] = []
        self.watched = 0


class MetricsState:
    """What a scrape reads. The tick thread only bumps counters (kill events, the
    tick histogram); the per-tick snapshot is built by the scrape itself."""

    def __init__(self, observer: Observer) -> None:
        self.observer = observer
        self.kills: dict[tuple[str, str, str, str], int] = {}
        self.last_kill_time = 0.0
        self.bucket_counts = [0] * len(BUCKETS)
        self.tick_count = 0
        self.tick_sum = 0.0
        self._snapshot = Snapshot()

    def on_kill(self, event: events.KillEvent) -> None:
        key = (event.ruleset, event.detector_group, event.killer, "true" if event.dry else "false")
        self.kills[key] = self.kills.get(key, 0) + 1
        self.last_kill_time = event.time

    def after_tick(self, duration: float) -> None:
        """In the tick thread, under the tick lock: a few additions, nothing else."""
        self.tick_count += 1
        self.tick_sum += duration
        for index, bound in enumerate(BUCKETS):
            if duration <= bound:
                self.bucket_counts[index] += 1
                break

    def snapshot(self) -> Snapshot:
        """The last tick's snapshot, built on the first scrape after that tick (later
        scrapes of the same tick reuse it). Built under the tick lock, between ticks,
        from the values the tick read (cached in its context); a tick never waits
        for more than this build. If a tick runs longer than LOCK_WAIT_S, the scrape
        serves the previous snapshot rather than wait."""
        observer = self.observer
        if not observer.lock.acquire(timeout=LOCK_WAIT_S):
            return self._snapshot
        try:
            tick = observer.ctx.tick
            if tick != self._snapshot.tick and self.tick_count > 0:
                self._snapshot = _build(observer.engine, observer.ctx, tick)
            return self._snapshot
        finally:
            observer.lock.release()


def _build(engine: Engine, ctx: OomdContext, tick: int) -> Snapshot:
    snap = Snapshot(tick)
    now = ctx.now()
    watched: dict[str, tuple[str, Any]] = {}
    for ruleset in engine.rulesets:
        snap.armed.append((ruleset.name, 1.0 if now >= ruleset.paused_until else 0.0))
        for group in ruleset.detector_groups:
            snap.firing.append((ruleset.name, group.name, 1.0 if group.fired else 0.0))
            for detector in group.detectors:
                resource = getattr(detector, "resource", None)
                patterns = getattr(detector, "cgroup", None)
                if resource in _RESOURCES and patterns and not ruleset.cgroups:
                    # The tick resolved these already: a cached list, cached reads.
                    for cg in ctx.resolve(patterns):
                        watched[cg.path.relative + "\0" + resource] = (resource, cg)
    snap.watched = len(watched)
    entries: list[tuple[str, Any]] = list(watched.values())
    if len(watched) > MAX_CGROUPS:
        entries = heapq.nlargest(
            MAX_CGROUPS,
            entries,
            key=lambda e: (e[1].pressure(e[0]) or ZERO_PRESSURE).avg10,
        )
    snap.pressure = [
        (cg.path.relative or "/", resource, cg.pressure(resource), cg.pressure(resource, False))
        for resource, cg in entries
    ]
    return snap


def _collector(state: MetricsState) -> Any:
    from prometheus_client.core import (
        CounterMetricFamily,
        GaugeMetricFamily,
        HistogramMetricFamily,
    )

    class Collector:
        def collect(self) -> Iterator[Any]:
            observer = state.observer
            snap = state.snapshot()
            kills = CounterMetricFamily(
                "oomd_kills",
                "Kills (dry ones with dry=true)",
                labels=["ruleset", "detector_group", "killer", "dry"],
            )
            for key, value in dict(state.kills).items():
                kills.add_metric(list(key), value)
            yield kills
            ticks = CounterMetricFamily("oomd_ticks", "Ticks run", labels=["kind"])
            for kind, value in dict(observer.ticks).items():
                ticks.add_metric([kind], value)
            yield ticks
            counts, total = list(state.bucket_counts), state.tick_sum
            cumulative, buckets = 0, []
            for bound, count in zip(BUCKETS, counts, strict=True):
                cumulative += count
                buckets.append((str(bound), cumulative))
            buckets.append(("+Inf", state.tick_count))
            yield HistogramMetricFamily(
                "oomd_tick_duration_seconds",
                "Wall time of a tick",
                buckets=buckets,
                sum_value=total,
            )
            errors = CounterMetricFamily(
                "oomd_plugin_errors", "Plugin calls that raised or timed out", labels=["plugin"]
            )
            prefix = guard.ERRORS + "."
            for name, count in state.observer.stats.snapshot().items():
                if name.startswith(prefix):
                    errors.add_metric([name[len(prefix) :]], count)
            yield errors
            firing = GaugeMetricFamily(
                "oomd_detector_group_firing",
                "1 if the detector group fired on the last tick",
                labels=["ruleset", "detector_group"],
            )
            for ruleset, group, is_firing in snap.firing:
                firing.add_metric([ruleset, group], is_firing)
            yield firing
            armed = GaugeMetricFamily(
                "oomd_ruleset_armed",
                "1 if the ruleset's actions may run (not paused after an action)",
                labels=["ruleset"],
            )
            for ruleset, is_armed in snap.armed:
                armed.add_metric([ruleset], is_armed)
            yield armed
            yield GaugeMetricFamily(
                "oomd_last_kill_timestamp_seconds",
                "Unix time of the last kill (dry ones included); 0: none yet",
                value=state.last_kill_time,
            )
            yield GaugeMetricFamily(
                "oomd_watched_cgroups",
                f"Cgroups whose pressure a detector watches (series for at most {MAX_CGROUPS})",
                value=snap.watched,
            )
            yield from _pressure_families(snap, CounterMetricFamily, GaugeMetricFamily)

    return Collector()


def _pressure_families(snap: Snapshot, counter: Any, gauge: Any) -> Iterator[Any]:
    """node_exporter's pressure names, per watched cgroup: ``..._waiting_seconds_total``
    (some), ``..._stalled_seconds_total`` (full), plus the full avg10 gauge."""
    for resource in _RESOURCES:
        stalled = counter(
            f"oomd_cgroup_pressure_{resource}_stalled",
            f"Time all non-idle tasks of the cgroup stalled on {resource} (full total)",
            labels=["cgroup"],
            unit="seconds",
        )
        waiting = counter(
            f"oomd_cgroup_pressure_{resource}_waiting",
            f"Time some tasks of the cgroup waited for {resource} (some total)",
            labels=["cgroup"],
            unit="seconds",
        )
        avg10 = gauge(
            f"oomd_cgroup_pressure_{resource}_full_avg10",
            f"The cgroup's 10 s average of full {resource} pressure, percent",
            labels=["cgroup"],
        )
        for cgroup, res, full, some in snap.pressure:
            if res != resource:
                continue
            if full is not None:
                avg10.add_metric([cgroup], full.avg10)
                if full.total is not None:
                    stalled.add_metric([cgroup], full.total / 1e6)
            if some is not None and some.total is not None:
                waiting.add_metric([cgroup], some.total / 1e6)
        yield from (stalled, waiting, avg10)


def start(address: str, observer: Observer) -> Callable[[], None]:
    """Serve ``/metrics`` on ``address``; returns the function that stops it."""
    host, port = parse_address(address)
    try:
        from prometheus_client import CollectorRegistry, start_http_server
    except ImportError:
        raise MetricsError(INSTALL_HINT) from None
    state = MetricsState(observer)
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_collector(state))
    server, _thread = start_http_server(port, addr=host, registry=registry)
    events.subscribers.append(state.on_kill)
    observer.after_tick = state.after_tick

    def stop() -> None:
        observer.after_tick = None
        if state.on_kill in events.subscribers:
            events.subscribers.remove(state.on_kill)
        server.shutdown()
        server.server_close()

    return stop


__all__ = ["INSTALL_HINT", "MAX_CGROUPS", "MetricsError", "available", "parse_address", "start"]
