"""Calling plugin code so that no plugin can stop the daemon or the other rulesets.

Every ``prerun``/``run`` goes through :func:`call`, which

* catches any exception, logs it with the plugin's and ruleset's names (the
  traceback the first time in a row, one line after that), counts it in stats
  (``oomd.plugin_errors`` and ``oomd.plugin_errors.<plugin>``) and returns None, which
  the ruleset reads as "failed" (docs/writing_a_plugin.md, "Isolation");
* measures the call's wall time: a call longer than ``env.slow_run_threshold`` is
  logged and counted (``oomd.plugin_slow_runs[.<plugin>]``), and a plugin slow
  :data:`SLOW_REPORT_AFTER` calls in a row is reported as such;
* runs third-party plugins (``plugin.origin`` set) on a worker thread and waits at
  most ``env.plugin_timeout`` seconds: a call that has not returned by then is
  abandoned (counted in ``oomd.plugin_timeouts[.<plugin>]``) and the plugin is skipped,
  as a failure, until that call returns. Python cannot stop a thread, so the abandoned call
  runs on; what it returns is discarded. Built-in plugins run on the main thread.
"""

from __future__ import annotations

import threading
import time
import weakref
from collections.abc import Callable

from oomd.typeshim import TYPE_CHECKING

if TYPE_CHECKING:
    from queue import SimpleQueue

from oomd import log
from oomd.cgroup.context import OomdContext
from oomd.engine.plugin import Plugin, PluginRet

ERRORS = "oomd.plugin_errors"
SLOW_RUNS = "oomd.plugin_slow_runs"
TIMEOUTS = "oomd.plugin_timeouts"
#: A plugin slow this many calls in a row (of the same method) is reported.
SLOW_REPORT_AFTER = 3


class PluginHealth:
    """What the guard remembers about one plugin instance."""

    __slots__ = ("errors_in_a_row", "hung", "slow_in_a_row")

    def __init__(self) -> None:
        #: Per method (``run``, ``prerun``): failed / slow calls in a row.
        self.errors_in_a_row: dict[str, int] = {}
        self.slow_in_a_row: dict[str, int] = {}
        #: The abandoned call still running on a worker thread, if any.
        self.hung: _Job | None = None


class _Job:
    __slots__ = (
        "abandoned",
        "ctx",
        "done",
        "error",
        "fn",
        "method",
        "plugin",
        "result",
        "ruleset",
        "started",
    )

    def __init__(
        self,
        plugin: Plugin,
        method: str,
        fn: Callable[[OomdContext], PluginRet | None],
        ctx: OomdContext,
        ruleset: str,
    ) -> None:
        self.plugin = plugin
        self.method = method
        self.fn = fn
        self.ctx = ctx
        self.ruleset = ruleset
        self.started = 0.0
        self.done = threading.Event()
        self.result: PluginRet | None = None
        self.error: BaseException | None = None
        self.abandoned = False


class _Workers:
    """Idle worker threads for third-party plugin calls; a worker busy with an
    abandoned call is not idle, so one hung call never blocks another plugin."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._idle: list[SimpleQueue[_Job]] = []
        self._started = 0

    def submit(self, job: _Job) -> None:
        with self._lock:
            inbox = self._idle.pop() if self._idle else None
            if inbox is None:
                self._started += 1
                number = self._started
        if inbox is None:
            # Imported here: only third-party plugins run on workers (queue and
            # traceback are not loaded by a daemon that does not need them).
            from queue import SimpleQueue

            inbox = SimpleQueue()
            threading.Thread(
                target=self._loop, args=(inbox,), name=f"oomd-plugin-{number}", daemon=True
            ).start()
        inbox.put(job)

    def _loop(self, inbox: SimpleQueue[_Job]) -> None:
        while True:
            job = inbox.get()
            try:
                job.result = job.fn(job.ctx)
            except BaseException as e:  # SystemExit too: a plugin must not end the daemon
                job.error = e
            with self._lock:
                job.done.set()
                late = job.abandoned
                self._idle.append(inbox)
            if late:
                _returned_late(job)


_workers = _Workers()


#: Per plugin instance; a plugin replaced by a drop-in takes its health with it.
_healths: weakref.WeakKeyDictionary[Plugin, PluginHealth] = weakref.WeakKeyDictionary()


def health_of(plugin: Plugin) -> PluginHealth | None:
    """What the guard remembers about ``plugin``; None if it never failed or hung."""
    return _healths.get(plugin)


def _health(plugin: Plugin) -> PluginHealth:
    health = _healths.get(plugin)
    if health is None:
        health = _healths[plugin] = PluginHealth()
    return health


def _count(plugin: Plugin, key: str) -> None:
    stats = plugin.env.stats
    stats.increment(key)
    stats.increment(f"{key}.{plugin.name}")


def _where(plugin: Plugin, method: str, ruleset: str) -> str:
    return f"Plugin={plugin.name} {method}() (Ruleset={ruleset})"


def _returned_late(job: _Job) -> None:
    """On the worker thread: an abandoned call finally returned."""
    health = _health(job.plugin)
    health.hung = None
    elapsed = time.monotonic() - job.started
    outcome = (
        f"raised {type(job.error).__name__}: {job.error}" if job.error is not None else "returned"
    )
    log.always(
        f"{_where(job.plugin, job.method, job.ruleset)} {outcome} after {elapsed:.1f} s; "
        "its result is discarded and it runs again from the next call"
    )


def _run_on_worker(job: _Job, timeout: float) -> bool:
    """True if the job finished within ``timeout``."""
    job.started = time.monotonic()
    _workers.submit(job)
    if job.done.wait(timeout):
        return True
    with _workers._lock:
        if job.done.is_set():
            return True
        job.abandoned = True
        _health(job.plugin).hung = job
    return False


def call(
    plugin: Plugin, method: str, ctx: OomdContext, ruleset: str, failure: str
) -> PluginRet | None:
    """Call ``plugin.<method>(ctx)`` (``run`` or ``prerun``); None if it raised, timed
    out or is still busy with an abandoned call. ``failure`` says in the log what the
    ruleset makes of a failure (e.g. "STOP")."""
    health = _health(plugin)
    where = _where(plugin, method, ruleset)
    hung = health.hung
    if hung is not None:
        if method == "run":
            log.always(
                f"{where}: skipped, still busy with the {hung.method}() call abandoned "
                f"{time.monotonic() - hung.started:.1f} s ago; treating as {failure}"
            )
        return None
    fn: Callable[[OomdContext], PluginRet | None] = getattr(plugin, method)
    error: BaseException | None = None
    result: PluginRet | None = None
    started = time.monotonic()
    if plugin.origin is None:
        try:
            result = fn(ctx)
        except Exception as e:
            error = e
    else:
        job = _Job(plugin, method, fn, ctx, ruleset)
        timeout = plugin.env.plugin_timeout
        if not _run_on_worker(job, timeout):
            _count(plugin, TIMEOUTS)
            log.always(
                f"{where} has not returned after {timeout:g} s: abandoned (it keeps running "
                f"on its thread and is skipped until it returns); treating as {failure}"
            )
            return None
        result, error = job.result, job.error
    elapsed = time.monotonic() - started
    _check_speed(plugin, health, method, where, elapsed)
    if error is None and method == "run" and not isinstance(result, PluginRet):
        error = TypeError(f"returned {result!r}, not a PluginRet")
    if error is not None:
        _report_error(plugin, health, method, where, error, failure)
        return None
    health.errors_in_a_row[method] = 0
    return result


def _report_error(
    plugin: Plugin,
    health: PluginHealth,
    method: str,
    where: str,
    error: BaseException,
    failure: str,
) -> None:
    _count(plugin, ERRORS)
    streak = health.errors_in_a_row[method] = health.errors_in_a_row.get(method, 0) + 1
    if streak > 1:
        log.always(
            f"{where} raised {type(error).__name__}: {error} "
            f"({streak} times in a row); treating as {failure}"
        )
        return
    log.always(f"{where} raised {type(error).__name__}: {error}; treating as {failure}")
    import traceback

    report = traceback.TracebackException.from_exception(error)
    # The guard's own frames (the worker loop) say nothing about the plugin's bug.
    report.stack = traceback.StackSummary.from_list(
        [frame for frame in report.stack if frame.filename != __file__]
    )
    for line in "".join(report.format()).rstrip().splitlines():
        log.always(line)


def _check_speed(
    plugin: Plugin, health: PluginHealth, method: str, where: str, elapsed: float
) -> None:
    threshold = plugin.env.slow_run_threshold
    if elapsed <= threshold:
        health.slow_in_a_row[method] = 0
        return
    streak = health.slow_in_a_row[method] = health.slow_in_a_row.get(method, 0) + 1
    _count(plugin, SLOW_RUNS)
    log.always(f"{where} took {elapsed:.2f} s (slow: over {threshold:g} s)")
    if streak == SLOW_REPORT_AFTER or (streak > SLOW_REPORT_AFTER and streak % 100 == 0):
        log.always(
            f"{where} has been slow {streak} calls in a row: every tick waits for it; "
            "fix or remove the plugin"
        )
