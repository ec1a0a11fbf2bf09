"""What the daemon tells about itself between kills: the status socket (``oomd
status``), the periodic status line (``--report-interval``), Prometheus metrics
(``--metrics-address``, oomd.metrics) and post-kill hooks - all fed by the tick loop
and the kill events (oomd.events), none of them able to block or slow a tick.

Status is computed on request only: the request's thread takes the tick lock (so it
runs between ticks, on the tick's own context, and a tick never sees it half-way),
evaluates the engine dry (oomd.engine.status), releases it. Nobody asking costs one
uncontended lock per tick.
"""

from __future__ import annotations

import contextlib
import os
import socket
import threading
import time
from collections.abc import Callable

from oomd import events, log
from oomd.cgroup.context import OomdContext
from oomd.engine import guard
from oomd.engine.engine import Engine
from oomd.options import DEFAULT_REPORT_INTERVAL, Options
from oomd.stats import KILLS, Stats, check_socket_path, listen_unix
from oomd.typeshim import TYPE_CHECKING

if TYPE_CHECKING:
    from typing import Any

_IO_TIMEOUT = 5.0
_REQUEST_MAX = 64


class Observer:
    """The tick loop's companion: times ticks, counts them, keeps the last kill, and
    answers status requests between ticks."""

    def __init__(
        self,
        engine: Engine,
        ctx: OomdContext,
        stats: Stats,
        interval: float,
        report_interval: float = DEFAULT_REPORT_INTERVAL,
    ) -> None:
        self.engine = engine
        self.ctx = ctx
        self.stats = stats
        self.interval = interval
        self.report_interval = report_interval
        self.lock = threading.Lock()
        self.started = time.time()
        self.ticks = {"scheduled": 0, "early": 0}
        self.last_tick_s = 0.0
        self.last_kill: dict[str, Any] | None = None
        self._next_report = time.monotonic() + report_interval if report_interval > 0 else None
        self._early = False
        #: Called after each tick with its duration (the metrics, when enabled).
        self.after_tick: Callable[[float], None] | None = None
        events.subscribers.append(self._on_kill)
        if engine.postkill_hooks:
            events.subscribers.append(engine.fire_postkill_hooks)

    def replace_engine(self, engine: Engine) -> None:
        """A reloaded config (SIGHUP): status and post-kill hooks follow the new rules."""
        with contextlib.suppress(ValueError):
            events.subscribers.remove(self.engine.fire_postkill_hooks)
        self.engine = engine
        if engine.postkill_hooks:
            events.subscribers.append(engine.fire_postkill_hooks)

    def close(self) -> None:
        for subscriber in (self._on_kill, self.engine.fire_postkill_hooks):
            with contextlib.suppress(ValueError):
                events.subscribers.remove(subscriber)

    def _on_kill(self, event: events.KillEvent) -> None:
        self.last_kill = event.fields()

    def tick_kind(self, early: bool) -> None:
        """The scheduler says what the next tick is (oomd.scheduler)."""
        self._early = early

    def run_tick(self, tick: Callable[[], None]) -> None:
        with self.lock:
            started = time.monotonic()
            tick()
            now = time.monotonic()
            self.last_tick_s = now - started
            self.ticks["early" if self._early else "scheduled"] += 1
            self._early = False
            if self.after_tick is not None:
                self.after_tick(self.last_tick_s)
            if self._next_report is not None and now >= self._next_report:
                self._next_report = now + self.report_interval
                log.always(self.report_line())

    # -- status ------------------------------------------------------------------

    def status(self, top: int = 3) -> dict[str, Any]:
        """The status document (docs/status.md); takes the tick lock."""
        from oomd.engine.status import evaluate  # when asked: not on a plain run's path

        with self.lock:
            doc = evaluate(self.engine, self.ctx, top)
            doc["daemon"] = {
                "pid": os.getpid(),
                "started": self.started,
                "uptime_s": time.time() - self.started,
                "interval_s": self.interval,
                "last_tick_duration_s": self.last_tick_s,
            }
            doc["counters"] = self.counters()
            doc["last_kill"] = self.last_kill
            return doc

    def counters(self) -> dict[str, Any]:
        snapshot = self.stats.snapshot()
        errors = {
            key[len(guard.ERRORS) + 1 :]: value
            for key, value in snapshot.items()
            if key.startswith(guard.ERRORS + ".")
        }
        return {
            "kills": snapshot.get(KILLS, 0),
            "ticks": dict(self.ticks),
            "plugin_errors": errors,
            "stats": snapshot,
        }

    def report_line(self) -> str:
        """``--report-interval``: host pressure and each ruleset's detector closest
        to firing, on one line (computed in the tick thread, under the lock)."""
        from oomd.engine.status import closest, evaluate  # not on a plain run's path

        doc = evaluate(self.engine, self.ctx, top=0)
        mem = (doc["host"].get("memory_pressure") or {}).get("some") or {}
        io = (doc["host"].get("io_pressure") or {}).get("some") or {}
        avail = doc["host"].get("mem_available")
        parts = [
            f"status: mem some avg10={mem.get('avg10', 0):.2f} io some avg10="
            f"{io.get('avg10', 0):.2f} MemAvailable={(avail or 0) >> 20}MB"
        ]
        for ruleset in doc["rulesets"]:
            found = closest(ruleset)
            state = "armed" if ruleset["armed"] else f"paused {ruleset['paused_for_s']:.0f}s"
            if found is None:
                parts.append(f'ruleset "{ruleset["name"]}" {state}')
                continue
            group, detector = found
            parts.append(
                f'ruleset "{ruleset["name"]}" {state}, closest: {group}/{detector_summary(detector)}'
            )
        return "; ".join(parts)


def _number(value: Any, unit: str) -> str:
    if isinstance(value, float):
        return f"{value:.2f}"
    if unit == "bytes" and isinstance(value, int):
        return f"{value >> 20}MB"
    return f"{value}"


def detector_summary(view: dict[str, Any]) -> str:
    """``pressure_above workload.slice memory full avg10 42.10/60 for 0s of 30s``."""
    text = str(view["name"])
    if "error" in view:
        return f"{text}: error {view['error']}"
    if "unavailable" in view:
        return f"{text}: unavailable ({view['unavailable']})"
    if "reading" not in view:
        return f"{text}: (no reading)"
    unit = view.get("unit", "")
    if view.get("cgroup"):
        text += f" {view['cgroup']}"
    text += f" {view.get('what', '')} {_number(view['reading'], unit)}"
    if view.get("threshold") is not None:
        op = "<" if view.get("direction") == "below" else "/"
        text += f"{op}{_number(view['threshold'], unit)}"
    if unit == "%":
        text += "%"
    if view.get("duration_s") is not None:
        text += f" for {view.get('held_s', 0)}s of {view['duration_s']}s"
    text += " (over)" if view.get("over") else ""
    return text


class StatusServer:
    """``<runtime-dir>/oomd-status.socket`` (mode 0600): a client sends ``status``
    (optionally ``status TOP``) and a newline, and reads one JSON document."""

    def __init__(self, observer: Observer, path: str) -> None:
        self.observer = observer
        self.path = path
        self._sock: socket.socket | None = None

    def start(self) -> None:
        self._sock = listen_unix(self.path)
        threading.Thread(target=self._serve, name="oomd-status", daemon=True).start()

    def close(self) -> None:
        sock, self._sock = self._sock, None
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()
            with contextlib.suppress(OSError):
                os.unlink(self.path)

    def _serve(self) -> None:
        while self._sock is not None:
            try:
                conn, _ = self._sock.accept()
            except OSError:
                if self._sock is None:
                    return
                continue
            conn.settimeout(_IO_TIMEOUT)
            threading.Thread(target=self._handle, args=(conn,), daemon=True).start()

    def _handle(self, conn: socket.socket) -> None:
        import json  # on a status request only

        with conn:
            try:
                request = b""
                while b"\n" not in request and len(request) < _REQUEST_MAX:
                    chunk = conn.recv(_REQUEST_MAX)
                    if not chunk:
                        break
                    request += chunk
                words = request.split(b"\n")[0].decode(errors="replace").split()
                if not words or words[0] != "status":
                    reply: dict[str, Any] = {"error": f"unknown request {' '.join(words)!r}"}
                else:
                    top = int(words[1]) if len(words) > 1 and words[1].isdigit() else 3
                    reply = self.observer.status(min(top, 100))
                conn.sendall(json.dumps(reply).encode() + b"\n")
            except Exception as e:  # a client never takes the daemon down
                log.always(f"Status server error: {type(e).__name__}: {e}")


class StatusClientError(Exception):
    pass


def request_status(path: str, top: int = 3) -> dict[str, Any]:
    """Ask a running daemon for its status document."""
    import json

    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(30)
        try:
            check_socket_path(path)
            sock.connect(path)
            sock.sendall(f"status {top}\n".encode())
            chunks = []
            while chunk := sock.recv(65536):
                chunks.append(chunk)
        except OSError as e:
            raise StatusClientError(
                f"Error: cannot talk to the daemon's status socket {path}: {e.strerror or e} "
                "(is oomd running with this --runtime-dir, and are you root?)"
            ) from None
    try:
        doc = json.loads(b"".join(chunks))
    except ValueError as e:
        raise StatusClientError(f"Error: unreadable status reply: {e}") from None
    if not isinstance(doc, dict):
        raise StatusClientError("Error: unreadable status reply: not an object")
    if "error" in doc and "rulesets" not in doc:
        raise StatusClientError(f"Error: the daemon answered: {doc['error']}")
    return doc


class ServiceError(Exception):
    """A side service that was asked for and cannot start (the message says why)."""


class Services:
    """The started side services; ``close`` stops them."""

    def __init__(self, observer: Observer) -> None:
        self.observer = observer
        self.closers: list[Callable[[], None]] = [observer.close]

    def close(self) -> None:
        for closer in reversed(self.closers):
            with contextlib.suppress(Exception):
                closer()


def start_services(opts: Options, observer: Observer) -> Services:
    """The status socket (always), and Prometheus metrics when asked; raises
    ServiceError when one cannot start."""
    services = Services(observer)
    server = StatusServer(observer, opts.status_socket)
    try:
        server.start()
    except OSError as e:
        services.close()
        raise ServiceError(
            f"Error binding status socket {opts.status_socket}: {e.strerror}"
        ) from None
    services.closers.append(server.close)
    if opts.metrics_address is not None:
        from oomd import metrics  # only with --metrics-address: it imports prometheus_client

        try:
            services.closers.append(metrics.start(opts.metrics_address, observer))
        except (OSError, metrics.MetricsError) as e:
            services.close()
            raise ServiceError(
                f"Cannot serve metrics on {opts.metrics_address}: {getattr(e, 'strerror', None) or e}"
            ) from None
    return services
