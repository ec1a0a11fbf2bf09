"""The exec prekill hook against odd names and the daemon's own protections (issue
12): a ruleset name holding a NUL or a lone surrogate no longer fails every hooked
kill, and the hook does not inherit the daemon's OOM protection."""

from __future__ import annotations

import contextlib
import json
from pathlib import Path

from tests.plugins.test_prekill_kill import (
    config,
    exec_hook,
    tick_until_hook_done,
    tree,
    wait_until,
)
from tests.support.harness import Harness


def test_a_nul_or_surrogate_in_the_ruleset_name_is_escaped_in_the_environment(
    harness: Harness, tmp_path: Path, oolog: Path
) -> None:
    out = tmp_path / "env"
    tree(harness)
    cfg = config([exec_hook(f'printf %s "$OOMD_RULESET" > {out}.tmp && mv {out}.tmp {out}')])
    text = json.dumps(cfg).replace('"name": "r"', '"name": "r\\u0000x\\udfff"')
    harness.load(text)
    harness.tick()
    wait_until(out.exists)
    assert out.read_bytes() == b"r\\x00x\\udfff"
    tick_until_hook_done(harness)
    assert len(harness.kills) == 1


def _set_own_score(value: int) -> None:
    with open("/proc/self/oom_score_adj", "w") as f:
        f.write(str(value))


def test_the_hook_gets_a_normal_oom_score_not_the_daemons(harness: Harness, tmp_path: Path) -> None:
    """The daemon sets -1000 on itself; a hook must not inherit it. This host's root
    cannot lower a score (no CAP_SYS_RESOURCE), so the test raises its own to 300 and
    checks that the hook runs at 0 all the same."""
    own = int(Path("/proc/self/oom_score_adj").read_text())
    out = tmp_path / "score"
    tree(harness)
    # The hook waits a little: the score is set from outside just after the start.
    script = f"sleep 0.3; cat /proc/self/oom_score_adj > {out}.tmp && mv {out}.tmp {out}"
    harness.load(config([exec_hook(script)]))
    _set_own_score(300)
    try:
        harness.tick()
    finally:
        with contextlib.suppress(OSError):
            _set_own_score(own)
    wait_until(out.exists)
    assert out.read_text().strip() == "0"
    tick_until_hook_done(harness)
