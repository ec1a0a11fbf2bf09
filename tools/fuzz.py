"""The long fuzz run (issue 12): ``python -m tools.fuzz [TREES] [--configs N]``.

Runs the tree fuzzer (tests/support/tree_fuzz.py) over TREES seeds (default 1,000) and
the hypothesis config properties (tests/property/test_config_properties.py) with
``HYPOTHESIS_PROFILE=long`` and N examples each (default 10,000), then prints
"N trees, M failures" and "N configs, M failures". Exit status 1 on any failure."""

from __future__ import annotations

import argparse
import itertools
import os
import subprocess
import sys
import time


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("trees", nargs="?", type=int, default=1000)
    parser.add_argument("--configs", type=int, default=10_000)
    parser.add_argument("--first-seed", type=int, default=0)
    args = parser.parse_args()

    from tests.support.tree_fuzz import run_seed

    from oomd import log

    devnull = os.open(os.devnull, os.O_WRONLY)
    log.set_output_fd(devnull)  # the daemon's log lines, not the fuzzer's report
    start = time.monotonic()
    failures: list[str] = []
    for seed in range(args.first_seed, args.first_seed + args.trees):
        failures.extend(run_seed(seed))
    log.set_output_fd(2)
    for failure in failures[:20]:
        print(failure)
    print(f"{args.trees} trees, {len(failures)} failures ({time.monotonic() - start:.0f} s)")

    start = time.monotonic()
    env = dict(os.environ, HYPOTHESIS_PROFILE="long", OOMD_FUZZ_EXAMPLES=str(args.configs))
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "tests/property/test_config_properties.py",
        ],
        env=env,
        capture_output=True,
        text=True,
    )
    tests = failed = 0
    for line in result.stdout.splitlines():
        if " passed" in line or " failed" in line:
            words = line.replace(",", "").split()
            for count, word in itertools.pairwise(words):
                if word in ("passed", "failed") and count.isdigit():
                    tests += int(count)
                    failed += int(count) if word == "failed" else 0
    if result.returncode != 0:
        print(result.stdout[-3000:])
    configs = tests * args.configs
    print(
        f"{configs} configs ({tests} properties x {args.configs} examples), "
        f"{failed} failures ({time.monotonic() - start:.0f} s)"
    )
    return 1 if failures or failed or result.returncode != 0 else 0


if __name__ == "__main__":
    sys.exit(main())
