"""What a plugin reports to ``oomd status`` and ``oomd explain``: a dry evaluation.

A plugin's ``explain(ctx)`` says what it would see and decide if it ran now, computed
from the same helpers its ``run`` uses, and changes nothing: no kill, no xattr, no
log line, no timer or other state of its own, no PSI trigger. It returns a plain dict
(JSON-ready); :func:`detector_reading` builds the shape every detector shares
(docs/status.md documents the schema). The default (:meth:`Plugin.explain`) returns
None: the plugin cannot say, and status shows only its name.
"""

from __future__ import annotations

from oomd.typeshim import TYPE_CHECKING

if TYPE_CHECKING:
    from typing import Any


def detector_reading(
    *,
    what: str,
    reading: float | int | None,
    threshold: float | int | None,
    unit: str,
    over: bool,
    held: int = 0,
    duration: int | None = None,
    cgroup: str | None = None,
    below: bool = False,
    **extra: Any,
) -> dict[str, Any]:
    """One detector's reading against its threshold.

    ``what``: the quantity, e.g. ``"memory full avg10"``; ``unit``: ``"%"``,
    ``"bytes"``, ``"bytes/s"`` or ``""``; ``over``: whether the condition holds now;
    ``held``: seconds it has held as of the last tick (the detector's timer, read
    without updating it); ``duration``: seconds it must hold to fire (None: no
    duration); ``cgroup``: the cgroup the reading is of (e.g. the most pressured)."""
    result: dict[str, Any] = {
        "what": what,
        "reading": reading,
        "threshold": threshold,
        "unit": unit,
        "over": over,
        "held_s": held,
        "duration_s": duration,
        "cgroup": cgroup,
        "direction": "below" if below else "above",
    }
    result.update(extra)
    return result


def closeness(reading: dict[str, Any]) -> float:
    """How close a detector reading is to its threshold (1.0: at it; used to pick the
    closest-to-firing detector of a ruleset for the periodic status line)."""
    value, threshold = reading.get("reading"), reading.get("threshold")
    if not isinstance(value, int | float) or not isinstance(threshold, int | float):
        return 0.0
    if reading.get("direction") == "below":
        return float(threshold) / float(value) if value > 0 else float("inf")
    if threshold == 0:
        return 1.0 if value > 0 else 0.0
    return float(value) / float(threshold)
