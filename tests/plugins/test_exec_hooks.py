"""The one way both exec hooks (pre- and post-kill) start their command:
``prekill_hooks.start_hook``."""

from __future__ import annotations

from pathlib import Path

from oomd.plugins.prekill_hooks import start_hook


def test_any_text_reaches_the_hook_environment(tmp_path: Path) -> None:
    """A NUL or a lone surrogate in a ruleset name (JSON allows both) cannot stop a
    hook: the value is escaped, for the post-kill hook as for the prekill one."""
    started = start_hook(
        "Postkill hook test",
        ["sh", "-c", 'printf "%s|%s" "$OOMD_RULESET" "$OOMD_CGROUP"'],
        {"OOMD_RULESET": "a\x00b", "OOMD_CGROUP": "w/\udcff\ud800"},
        move=False,
    )
    assert started is not None
    proc, moved = started
    out, _ = proc.communicate(timeout=10)
    assert moved is None
    assert out == b"a\\x00b|w/\\udcff\\ud800"
    assert Path(f"/proc/{proc.pid}").exists() is False


def test_a_command_that_cannot_start_is_logged_not_raised(oolog: Path) -> None:
    assert start_hook("Postkill hook test", ["/nonexistent/hook"], {}, move=False) is None
    assert start_hook("Postkill hook test", ["sh\x00"], {}, move=False) is None
    text = oolog.read_text()
    assert "Postkill hook test could not run /nonexistent/hook" in text
    assert "Postkill hook test could not run 'sh\\x00'" in text
