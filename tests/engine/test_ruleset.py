"""Ruleset and engine semantics (upstream engine/Ruleset.cpp, DetectorGroup.cpp and
ConfigCompilerTest: IncrementCount, MultiGroupIncrementCount, AsyncAction,
TwoChainsIndependentlyPaused, IncrementCountNoop)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from oomd.cgroup.context import ActionContext, OomdContext
from oomd.engine.engine import Engine
from oomd.engine.plugin import Plugin, PluginEnv, PluginRet
from oomd.engine.ruleset import DetectorGroup, Ruleset
from oomd.kill import new_kill_uuid
from tests.support.harness import FakeClock
from tests.support.tree import FakeTree


class Scripted(Plugin):
    """Returns the next scripted result each run (the last one forever after)."""

    name = "scripted"

    def __init__(self, env: PluginEnv, results: Sequence[PluginRet], label: str = "") -> None:
        super().__init__(env, {})
        self.results = list(results)
        self.label = label
        self.runs = 0
        self.preruns = 0
        self.seen: list[ActionContext] = []

    def prerun(self, ctx: OomdContext) -> None:
        self.preruns += 1

    def run(self, ctx: OomdContext) -> PluginRet:
        self.seen.append(ctx.action_context)
        result = self.results[min(self.runs, len(self.results) - 1)]
        self.runs += 1
        return result


class Raising(Plugin):
    name = "raising"

    def run(self, ctx: OomdContext) -> PluginRet:
        raise RuntimeError("plugin bug")


C, S, A = PluginRet.CONTINUE, PluginRet.STOP, PluginRet.ASYNC_PAUSED


def make(tree: FakeTree) -> tuple[PluginEnv, OomdContext, FakeClock]:
    clock = FakeClock()
    env = PluginEnv(cgroup_fs=tree.fs)
    return env, OomdContext(tree.fs, env.system, clock=clock), clock


def tick(engine: Engine, ctx: OomdContext, clock: FakeClock, seconds: float = 1.0) -> None:
    clock.advance(seconds)
    engine.tick(ctx)


def test_firing_group_runs_action_every_tick_when_it_continues(tree: FakeTree) -> None:
    """IncrementCount: a CONTINUE-ending chain does not pause the ruleset."""
    env, ctx, clock = make(tree)
    action = Scripted(env, [C])
    engine = Engine([Ruleset("r", [DetectorGroup("g", [Scripted(env, [C])])], [action])])
    for _ in range(3):
        tick(engine, ctx, clock)
    assert action.runs == 3


def test_group_is_an_and_of_its_detectors_and_all_detectors_run(tree: FakeTree) -> None:
    """IncrementCountNoop + DetectorGroup::check: one STOP vetoes, no short-circuit."""
    env, ctx, clock = make(tree)
    first, second = Scripted(env, [S]), Scripted(env, [C])
    action = Scripted(env, [C])
    engine = Engine([Ruleset("r", [DetectorGroup("g", [first, second])], [action])])
    tick(engine, ctx, clock)
    assert action.runs == 0
    assert (first.runs, second.runs) == (1, 1)


def test_groups_are_or_and_the_first_firing_group_names_the_action_context(tree: FakeTree) -> None:
    env, ctx, clock = make(tree)
    action = Scripted(env, [C])
    later = Scripted(env, [C])
    engine = Engine(
        [
            Ruleset(
                "r",
                [
                    DetectorGroup("quiet", [Scripted(env, [S])]),
                    DetectorGroup("loud", [Scripted(env, [C])]),
                    DetectorGroup("also loud", [later]),
                ],
                [action],
            )
        ]
    )
    tick(engine, ctx, clock)
    assert action.runs == 1
    assert action.seen[0].ruleset_name == "r"
    assert action.seen[0].detector_group == "loud"
    assert later.runs == 1, "every group is evaluated even after one fired"
    assert ctx.action_context == ActionContext(), (
        "the action context is cleared after the ruleset ran"
    )


def test_stop_pauses_ruleset_for_post_action_delay_but_detectors_keep_running(
    tree: FakeTree,
) -> None:
    env, ctx, clock = make(tree)
    detector = Scripted(env, [C])
    action = Scripted(env, [S])
    engine = Engine(
        [Ruleset("r", [DetectorGroup("g", [detector])], [action], post_action_delay=10)]
    )
    tick(engine, ctx, clock)  # t=1001: fires, STOP -> paused until 1011
    tick(engine, ctx, clock, 9)  # t=1010: paused
    assert (action.runs, detector.runs) == (1, 2)
    tick(engine, ctx, clock, 1)  # t=1011: pause over ("now < until" is false)
    assert action.runs == 2


def test_zero_post_action_delay_does_not_pause(tree: FakeTree) -> None:
    env, ctx, clock = make(tree)
    action = Scripted(env, [S])
    engine = Engine(
        [Ruleset("r", [DetectorGroup("g", [Scripted(env, [C])])], [action], post_action_delay=0)]
    )
    tick(engine, ctx, clock, 0)
    tick(engine, ctx, clock, 0)
    assert action.runs == 2


def test_plugin_pause_override_replaces_ruleset_delay_once(tree: FakeTree) -> None:
    """A kill plugin's own post_action_delay applies to that STOP only."""
    env, ctx, clock = make(tree)

    class Overriding(Scripted):
        def run(self, ctx: OomdContext) -> PluginRet:
            assert ctx.invoking_ruleset is not None
            if self.runs == 0:
                ctx.invoking_ruleset.pause_actions(2)
            return super().run(ctx)

    action = Overriding(env, [S])
    engine = Engine(
        [Ruleset("r", [DetectorGroup("g", [Scripted(env, [C])])], [action], post_action_delay=30)]
    )
    tick(engine, ctx, clock)  # STOP with override: paused 2 s
    tick(engine, ctx, clock, 2)  # runs again, STOP without override: paused 30 s
    tick(engine, ctx, clock, 29)
    assert action.runs == 2
    tick(engine, ctx, clock, 1)
    assert action.runs == 3


def test_async_paused_action_resumes_next_tick_with_saved_context_even_if_nothing_fires(
    tree: FakeTree,
) -> None:
    """AsyncAction: the chain resumes at the paused action with the original detector
    group, whether or not a group fires on that tick; earlier actions are not re-run."""
    env, ctx, clock = make(tree)
    detector = Scripted(env, [C, S, S, S])
    first = Scripted(env, [C])
    pausing = Scripted(env, [A, A, C])
    last = Scripted(env, [C])
    engine = Engine([Ruleset("r", [DetectorGroup("g", [detector])], [first, pausing, last])])
    tick(engine, ctx, clock)
    assert (first.runs, pausing.runs, last.runs) == (1, 1, 0)
    tick(engine, ctx, clock)
    assert (first.runs, pausing.runs, last.runs) == (1, 2, 0)
    tick(engine, ctx, clock)
    assert (first.runs, pausing.runs, last.runs) == (1, 3, 1)
    assert {c.detector_group for c in pausing.seen} == {"g"}
    assert len({c.kill_uuid for c in pausing.seen}) == 1, "a resumed chain keeps its kill context"
    tick(engine, ctx, clock)
    assert (first.runs, pausing.runs, last.runs) == (1, 3, 1), "state resets after the chain ends"


def test_two_rulesets_pause_and_resume_independently(tree: FakeTree) -> None:
    """TwoChainsIndependentlyPaused."""
    env, ctx, clock = make(tree)
    a = Scripted(env, [A, C])
    b = Scripted(env, [C])
    engine = Engine(
        [
            Ruleset("ra", [DetectorGroup("g", [Scripted(env, [C, S])])], [a]),
            Ruleset("rb", [DetectorGroup("g", [Scripted(env, [C])])], [b]),
        ]
    )
    tick(engine, ctx, clock)
    tick(engine, ctx, clock)
    assert (a.runs, b.runs) == (2, 2)


def test_prerun_runs_every_plugin_every_tick_even_when_paused(tree: FakeTree) -> None:
    env, ctx, clock = make(tree)
    detector = Scripted(env, [C])
    action = Scripted(env, [S])
    engine = Engine(
        [Ruleset("r", [DetectorGroup("g", [detector])], [action], post_action_delay=100)]
    )
    for _ in range(3):
        tick(engine, ctx, clock)
    assert (detector.preruns, action.preruns) == (3, 3)
    assert action.runs == 1


def test_raising_plugin_is_logged_and_never_escapes_the_tick(tree: FakeTree, oolog: Path) -> None:
    env, ctx, clock = make(tree)
    action = Scripted(env, [C])
    engine = Engine(
        [
            Ruleset("broken", [DetectorGroup("g", [Raising(env, {})])], [action]),
            Ruleset("fine", [DetectorGroup("g", [Scripted(env, [C])])], [Raising(env, {}), action]),
        ]
    )
    tick(engine, ctx, clock)
    text = oolog.read_text()
    assert (
        "Plugin=raising run() (Ruleset=broken) raised RuntimeError: plugin bug; "
        "treating as CONTINUE" in text
    )
    assert (
        "Plugin=raising run() (Ruleset=fine) raised RuntimeError: plugin bug; treating as STOP"
        in text
    )
    # A group whose only detector raised does not fire; a raising action ends its chain.
    assert action.runs == 0
    assert env.stats.get("oomd.plugin_errors") == 2
    assert env.stats.get("oomd.plugin_errors.raising") == 2


def test_unavailable_plugins_never_fire_and_are_skipped_in_chains(tree: FakeTree) -> None:
    env, ctx, clock = make(tree)
    detector = Scripted(env, [C])
    detector.unavailable = "no memory controller"
    skipped = Scripted(env, [S])
    skipped.unavailable = "no memory controller"
    action = Scripted(env, [C])
    engine = Engine(
        [
            Ruleset("r1", [DetectorGroup("g", [detector])], [action]),
            Ruleset("r2", [DetectorGroup("g", [Scripted(env, [C])])], [skipped, action]),
        ]
    )
    tick(engine, ctx, clock)
    assert (detector.runs, skipped.runs, action.runs) == (0, 0, 1)


def test_silence_logs_engine_and_plugins(tree: FakeTree, oolog: Path) -> None:
    """`engine` hides the fired/running lines; `plugins` hides plugin output; the ASYNC
    line is never hidden (upstream Ruleset.cpp)."""
    env, ctx, clock = make(tree)

    class Chatty(Scripted):
        def run(self, ctx: OomdContext) -> PluginRet:
            from oomd import log

            log.info(f"chatty {self.label}")
            return super().run(ctx)

    loud = Ruleset("loud", [DetectorGroup("g", [Chatty(env, [C], "L")])], [Scripted(env, [C])])
    quiet = Ruleset(
        "quiet",
        [DetectorGroup("g", [Chatty(env, [C], "Q")])],
        [Scripted(env, [A])],
        silence_engine=True,
        silence_plugins=True,
    )
    tick(Engine([loud, quiet]), ctx, clock)
    text = oolog.read_text()
    assert "chatty L" in text and "chatty Q" not in text
    assert "has fired for Ruleset=loud with ruleset cgroup ``. Running action chain." in text
    assert "Ruleset=quiet" not in text
    assert (
        "Running Action=scripted" in text and "returned CONTINUE. Continuing action chain." in text
    )
    assert "Action=scripted returned ASYNC. Yielding action chain." in text


def test_kill_uuid_is_two_unpadded_hex_numbers() -> None:
    uuids = {new_kill_uuid() for _ in range(100)}
    assert len(uuids) == 100
    assert all(0 < len(u) <= 32 and int(u, 16) >= 0 for u in uuids)
