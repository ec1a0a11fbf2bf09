"""The "over a threshold for N seconds" timer several detectors share."""

from __future__ import annotations


class ThresholdTimer:
    """Tracks since when a condition has held, on the daemon's monotonic clock.

    Elapsed time is truncated to whole seconds before comparing with the duration, as
    upstream does, so ``duration`` 0 fires on the first tick over the threshold.
    """

    __slots__ = ("since",)

    def __init__(self) -> None:
        self.since: float | None = None

    def update(self, over: bool, now: float, duration: int) -> bool:
        """Record this tick's condition; True when it has held for ``duration`` s."""
        if not over:
            self.since = None
            return False
        if self.since is None:
            self.since = now
        return int(now - self.since) >= duration

    def held(self, now: float) -> int:
        """Whole seconds the condition has held as of the last :meth:`update` (0 when
        it does not hold); reads, never changes, the timer (``oomd status``)."""
        return 0 if self.since is None else int(now - self.since)
