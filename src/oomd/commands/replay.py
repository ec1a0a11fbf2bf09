"""``oomd replay -C CONFIG FILE [--compare OTHER]``: what a config would have done.

Runs the real engine and plugins over a trace (oomd.replay) and prints each kill in
upstream's kill-line format with the ranking behind it; ``--compare`` replays a
second config over the same trace and says which acts first.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Sequence

from oomd.config.errors import ConfigError
from oomd.replay import Kill, ReplayResult, run_replay
from oomd.trace import Trace, TraceError


def _clock(kill: Kill) -> str:
    return time.strftime("%H:%M:%S", time.localtime(kill.wall))


def _describe(trace: Trace) -> str:
    first, last = trace.ticks[0], trace.ticks[-1]
    span = last[1] - first[1]
    when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(first[2]))
    host = trace.meta.get("hostname", "?")
    return f"{len(trace.ticks)} ticks over {span:.0f} s, recorded on {host} from {when}"


def _print_result(name: str, result: ReplayResult, t0: float, verbose: bool) -> None:
    print(f"== {name}: {len(result.kills)} kill(s) in {result.ticks} ticks")
    for kill in result.kills:
        print(f"tick {kill.tick} (+{kill.time - t0:.1f} s, {_clock(kill)}): {kill.line}")
        if verbose:
            for line in kill.ranking:
                print(f"    {line}")
    for error in result.errors:
        print(f"error: {error}")


def _compare(a: ReplayResult, b: ReplayResult) -> list[str]:
    lines = []
    for index in range(max(len(a.kills), len(b.kills))):
        ka = a.kills[index] if index < len(a.kills) else None
        kb = b.kills[index] if index < len(b.kills) else None
        nth = f"kill {index + 1}: "
        if ka is not None and kb is not None:
            delta = kb.time - ka.time
            if abs(delta) < 1e-9:
                order = "at the same tick as B"
            elif delta > 0:
                order = f"{delta:.0f} s before B"
            else:
                order = f"{-delta:.0f} s after B"
            same = "the same victim" if ka.victim == kb.victim else f"B kills {kb.victim}"
            lines.append(f"{nth}A kills {ka.victim} at {_clock(ka)}, {order}; {same}")
        elif ka is not None:
            lines.append(f"{nth}A kills {ka.victim} at {_clock(ka)}; B never does")
        elif kb is not None:
            lines.append(f"{nth}B kills {kb.victim} at {_clock(kb)}; A never does")
    if not lines:
        lines.append("neither A nor B kills")
    return lines


def main(argv: Sequence[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="oomd replay",
        description="Replay a trace (oomd record, or a flight recorder's incident file) "
        "through the engine with CONFIG; kills are simulated.",
    )
    parser.add_argument("-C", "--config", required=True, help="the config to try")
    parser.add_argument("trace", metavar="FILE", help="a trace file")
    parser.add_argument("--compare", metavar="OTHER", help="a second config to compare with")
    parser.add_argument("-q", "--quiet", action="store_true", help="kill lines only, no ranking")
    args = parser.parse_args(list(argv))
    try:
        trace = Trace(args.trace)
    except TraceError as e:
        print(f"oomd replay: {e}")
        return 1
    configs = [args.config] + ([args.compare] if args.compare else [])
    results = []
    for config in configs:
        try:
            results.append(run_replay(trace, config))
        except ConfigError as e:
            print(f"oomd replay: {config}: the config does not compile:")
            for problem in e.problems:
                print(f"  {problem}")
            return 1
        except TraceError as e:
            print(f"oomd replay: {e}")
            return 1
    t0 = trace.ticks[0][1]
    print(f"trace {args.trace}: {_describe(trace)}")
    recorded = [e for e in trace.events if e.kind == "kill"]
    for event in recorded:
        print(f"recorded at tick {event.tick}: {event.line}")
    for label, result in zip("AB", results, strict=False):
        _print_result(f"{label} = {result.config}", result, t0, not args.quiet)
    if len(results) == 2:
        print("== comparison")
        for line in _compare(results[0], results[1]):
            print(line)
    trace.close()
    return 0
