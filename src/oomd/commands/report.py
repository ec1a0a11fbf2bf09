"""``oomd report -C CONFIG FILE -o report.html``: a trace as a picture (oomd.report)."""

from __future__ import annotations

import argparse
import os
from collections.abc import Sequence

from oomd.config.errors import ConfigError
from oomd.report import render
from oomd.trace import Trace, TraceError


def main(argv: Sequence[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="oomd report",
        description="Replay FILE with CONFIG and write one self-contained HTML page "
        "(inline SVG plots, works offline).",
    )
    parser.add_argument("-C", "--config", required=True)
    parser.add_argument("trace", metavar="FILE")
    parser.add_argument("-o", "--output", required=True, metavar="HTML")
    args = parser.parse_args(list(argv))
    try:
        trace = Trace(args.trace)
        page = render(trace, args.config)
    except TraceError as e:
        print(f"oomd report: {e}")
        return 1
    except ConfigError as e:
        print(f"oomd report: {args.config}: the config does not compile:")
        for problem in e.problems:
            print(f"  {problem}")
        return 1
    tmp = args.output + ".tmp"
    try:
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(page)
        os.replace(tmp, args.output)
    except OSError as e:
        print(f"oomd report: cannot write {args.output}: {e.strerror}")
        return 1
    print(f"oomd report: wrote {args.output}")
    return 0
