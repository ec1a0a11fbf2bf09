"""A plugin that raises, is slow or hangs cannot stop the daemon or the other rulesets
(oomd.engine.guard; docs/writing_a_plugin.md, "Isolation")."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

from oomd.cgroup.context import OomdContext
from oomd.engine import guard
from oomd.engine.engine import Engine
from oomd.engine.plugin import Action, Detector, Plugin, PluginEnv, PluginRet
from oomd.engine.ruleset import DetectorGroup, Ruleset
from tests.support.harness import FakeClock
from tests.support.tree import FakeTree

C, S = PluginRet.CONTINUE, PluginRet.STOP


class Fixed(Plugin):
    """Returns ``result`` on every run and counts its calls."""

    name = "fixed"

    def __init__(self, env: PluginEnv, result: PluginRet) -> None:
        super().__init__(env, {})
        self.result = result
        self.runs = 0

    def run(self, ctx: OomdContext) -> PluginRet:
        self.runs += 1
        return self.result


class Raises(Plugin):
    name = "raises"

    def __init__(self, env: PluginEnv, error: BaseException | None = None) -> None:
        super().__init__(env, {})
        self.error = error or RuntimeError("plugin bug")
        self.runs = 0

    def run(self, ctx: OomdContext) -> PluginRet:
        self.runs += 1
        raise self.error


class Sleeps(Plugin):
    name = "sleeps"

    def __init__(self, env: PluginEnv, seconds: float, result: PluginRet = C) -> None:
        super().__init__(env, {})
        self.seconds = seconds
        self.result = result

    def run(self, ctx: OomdContext) -> PluginRet:
        time.sleep(self.seconds)
        return self.result


class Hangs(Plugin):
    """Blocks in run() until released (a plugin stuck on I/O)."""

    name = "hangs"

    def __init__(self, env: PluginEnv) -> None:
        super().__init__(env, {})
        self.release = threading.Event()
        self.calls = 0
        self.returned = threading.Event()

    def run(self, ctx: OomdContext) -> PluginRet:
        self.calls += 1
        self.release.wait(30)
        self.returned.set()
        return C


@pytest.fixture
def setup(tree: FakeTree) -> tuple[PluginEnv, OomdContext, FakeClock]:
    clock = FakeClock()
    env = PluginEnv(cgroup_fs=tree.fs)
    return env, OomdContext(tree.fs, env.system, clock=clock), clock


def tick(engine: Engine, ctx: OomdContext, clock: FakeClock) -> None:
    clock.advance(1)
    engine.tick(ctx)


def group_fires(
    setup: tuple[PluginEnv, OomdContext, FakeClock], detectors: Sequence[Plugin]
) -> bool:
    env, ctx, clock = setup
    action = Fixed(env, C)
    tick(Engine([Ruleset("r", [DetectorGroup("g", list(detectors))], [action])]), ctx, clock)
    return action.runs == 1


# -- exceptions ----------------------------------------------------------------------------


def test_a_raising_detector_counts_as_continue_but_is_no_evidence(
    setup: tuple[PluginEnv, OomdContext, FakeClock],
) -> None:
    env = setup[0]
    # It does not veto a group whose other detectors fire...
    assert group_fires(setup, [Raises(env), Fixed(env, C)])
    # ...nor make one fire whose other detector does not...
    assert not group_fires(setup, [Raises(env), Fixed(env, S)])
    # ...and a group of failed detectors never fires.
    assert not group_fires(setup, [Raises(env)])
    assert not group_fires(setup, [Raises(env), Raises(env)])
    assert env.stats.get(guard.ERRORS) == 5


def test_a_raising_action_counts_as_stop(
    setup: tuple[PluginEnv, OomdContext, FakeClock],
) -> None:
    env, ctx, clock = setup
    after = Fixed(env, C)
    ruleset = Ruleset(
        "r", [DetectorGroup("g", [Fixed(env, C)])], [Raises(env), after], post_action_delay=10
    )
    engine = Engine([ruleset])
    tick(engine, ctx, clock)
    assert after.runs == 0
    # STOP pauses the ruleset for post_action_delay, as any STOP does.
    assert ruleset.paused_until == clock.now + 10


def test_errors_are_logged_with_plugin_and_ruleset_and_counted(
    setup: tuple[PluginEnv, OomdContext, FakeClock], oolog: Path
) -> None:
    env, ctx, clock = setup
    broken = Raises(env, ValueError("bad value"))
    fine = Fixed(env, C)
    engine = Engine(
        [
            Ruleset("broken rules", [DetectorGroup("g", [broken])], [Fixed(env, C)]),
            Ruleset("fine rules", [DetectorGroup("g", [Fixed(env, C)])], [fine]),
        ]
    )
    for _ in range(3):
        tick(engine, ctx, clock)
    assert fine.runs == 3  # the other ruleset is unaffected
    text = oolog.read_text()
    assert (
        "Plugin=raises run() (Ruleset=broken rules) raised ValueError: bad value; "
        "treating as CONTINUE" in text
    )
    # The traceback once, then one line per failure.
    assert text.count("Traceback (most recent call last):") == 1
    assert "in run\n" in text or "in run" in text
    assert "raised ValueError: bad value (3 times in a row); treating as CONTINUE" in text
    assert env.stats.get("oomd.plugin_errors") == 3
    assert env.stats.get("oomd.plugin_errors.raises") == 3


def test_prerun_errors_are_caught_and_run_still_happens(
    setup: tuple[PluginEnv, OomdContext, FakeClock], oolog: Path
) -> None:
    env = setup[0]

    class BadPrerun(Fixed):
        name = "bad_prerun"

        def prerun(self, ctx: OomdContext) -> None:
            raise KeyError("missing")

    detector = BadPrerun(env, C)
    assert group_fires(setup, [detector])
    assert "Plugin=bad_prerun prerun() (Ruleset=r) raised KeyError: 'missing'" in (
        oolog.read_text()
    )
    assert env.stats.get("oomd.plugin_errors.bad_prerun") == 1


def test_a_run_that_returns_garbage_is_an_error(
    setup: tuple[PluginEnv, OomdContext, FakeClock], oolog: Path
) -> None:
    env = setup[0]

    class Garbage(Plugin):
        name = "garbage"

        def run(self, ctx: OomdContext) -> PluginRet:
            return True  # type: ignore[return-value]

    assert not group_fires(setup, [Garbage(env, {})])
    assert "raised TypeError: returned True, not a PluginRet" in oolog.read_text()


def test_detector_base_maps_detect_to_continue_or_stop(
    setup: tuple[PluginEnv, OomdContext, FakeClock],
) -> None:
    env = setup[0]

    class Flag(Detector):
        name = "flag"
        value = False

        def detect(self, ctx: OomdContext) -> bool:
            return self.value

    flag = Flag(env, {})
    assert not group_fires(setup, [flag])
    flag.value = True
    assert group_fires(setup, [flag])
    assert isinstance(flag, Plugin) and not isinstance(flag, Action)


# -- slow runs -------------------------------------------------------------------------------


def test_slow_runs_are_logged_counted_and_reported_after_three_in_a_row(
    setup: tuple[PluginEnv, OomdContext, FakeClock], oolog: Path
) -> None:
    env, ctx, clock = setup
    env.slow_run_threshold = 0.01
    slow = Sleeps(env, 0.03)
    action = Fixed(env, C)
    engine = Engine([Ruleset("r", [DetectorGroup("g", [slow])], [action])])
    for _ in range(4):
        tick(engine, ctx, clock)
    assert action.runs == 4  # slow, but its answer counts
    text = oolog.read_text()
    assert text.count("Plugin=sleeps run() (Ruleset=r) took ") == 4
    assert "(slow: over 0.01 s)" in text
    assert text.count("has been slow 3 calls in a row") == 1
    assert env.stats.get("oomd.plugin_slow_runs.sleeps") == 4
    # A fast run ends the streak.
    slow.seconds = 0
    tick(engine, ctx, clock)
    slow.seconds = 0.03
    for _ in range(2):
        tick(engine, ctx, clock)
    assert oolog.read_text().count("calls in a row") == 1


def test_a_plugin_that_takes_one_long_tick_delays_but_does_not_stop_the_others(
    setup: tuple[PluginEnv, OomdContext, FakeClock],
) -> None:
    """Built-in plugins run on the main thread: a long run delays the tick, then
    everything goes on."""
    env, ctx, clock = setup
    env.slow_run_threshold = 0.05
    long = Sleeps(env, 0.2)
    other = Fixed(env, C)
    engine = Engine(
        [
            Ruleset("slow", [DetectorGroup("g", [long])], [Fixed(env, C)]),
            Ruleset("other", [DetectorGroup("g", [Fixed(env, C)])], [other]),
        ]
    )
    tick(engine, ctx, clock)
    long.seconds = 0
    tick(engine, ctx, clock)
    assert other.runs == 2


# -- the watchdog (third-party plugins) ---------------------------------------------------


@pytest.fixture
def hangs(setup: tuple[PluginEnv, OomdContext, FakeClock]) -> Iterator[Hangs]:
    plugin = Hangs(setup[0])
    plugin.origin = "plugin dir: /test/hangs.py"
    yield plugin
    plugin.release.set()


def test_a_hung_third_party_plugin_is_abandoned_and_the_daemon_keeps_ticking(
    setup: tuple[PluginEnv, OomdContext, FakeClock], hangs: Hangs, oolog: Path
) -> None:
    env, ctx, clock = setup
    env.plugin_timeout = 0.2
    other = Fixed(env, C)
    hung_action = Fixed(env, C)
    engine = Engine(
        [
            Ruleset("hung", [DetectorGroup("g", [hangs])], [hung_action]),
            Ruleset("other", [DetectorGroup("g", [Fixed(env, C)])], [other]),
        ]
    )
    started = time.monotonic()
    tick(engine, ctx, clock)
    assert time.monotonic() - started < 5
    assert other.runs == 1 and hung_action.runs == 0  # failed detector: no evidence
    text = oolog.read_text()
    assert "Plugin=hangs run() (Ruleset=hung) has not returned after 0.2 s: abandoned" in text
    # While its call is still running it is skipped, without waiting.
    started = time.monotonic()
    tick(engine, ctx, clock)
    assert time.monotonic() - started < 0.15
    assert hangs.calls == 1 and other.runs == 2
    assert "Plugin=hangs run() (Ruleset=hung): skipped, still busy" in oolog.read_text()
    assert env.stats.get("oomd.plugin_timeouts.hangs") == 1
    # Once the call returns, the plugin runs again.
    hangs.release.set()
    assert hangs.returned.wait(5)
    deadline = time.monotonic() + 5
    while (health := guard.health_of(hangs)) is not None and health.hung is not None:
        assert time.monotonic() < deadline
        time.sleep(0.01)
    assert "returned after" in oolog.read_text()
    tick(engine, ctx, clock)
    assert hangs.calls == 2 and hung_action.runs == 1


def test_third_party_plugins_run_on_a_worker_thread_and_cannot_exit_the_daemon(
    setup: tuple[PluginEnv, OomdContext, FakeClock], oolog: Path
) -> None:
    env = setup[0]
    seen: list[str] = []

    class Where(Plugin):
        name = "where"

        def run(self, ctx: OomdContext) -> PluginRet:
            seen.append(threading.current_thread().name)
            return C

    builtin, third_party = Where(env, {}), Where(env, {})
    third_party.origin = "entry point: test"
    exiting = Raises(env, SystemExit(1))
    exiting.origin = "entry point: test"
    assert group_fires(setup, [builtin, third_party])
    assert seen[0] == threading.main_thread().name
    assert seen[1].startswith("oomd-plugin-")
    assert group_fires(setup, [exiting, Fixed(env, C)])
    assert "raised SystemExit: 1; treating as CONTINUE" in oolog.read_text()
