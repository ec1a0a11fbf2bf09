""" "Did you mean ...?" for misspelled config keys and plugin names."""

from __future__ import annotations

from collections.abc import Iterable


def closest(word: str, known: Iterable[str]) -> str | None:
    """The known word closest to ``word`` (None when nothing is close): difflib's
    ratio, compared case-insensitively, with ``-``/``_`` treated alike (upstream itself
    mixes ``silence-logs`` and ``post_action_delay``)."""
    import difflib  # only on a mistake: the daemon's normal path does not load it

    def norm(s: str) -> str:
        return s.lower().replace("-", "_")

    by_norm: dict[str, str] = {}
    for k in known:
        by_norm.setdefault(norm(k), k)
    found = difflib.get_close_matches(norm(word), list(by_norm), n=1, cutoff=0.6)
    return by_norm[found[0]] if found else None


def did_you_mean(word: str, known: Iterable[str]) -> str:
    """`` (did you mean "x"?)`` or ``""``."""
    match = closest(word, known)
    return f' (did you mean "{match}"?)' if match is not None else ""
