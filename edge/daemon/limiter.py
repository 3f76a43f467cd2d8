"""Per-source frame-rate limit (``sources[].fps``), scheduled by next-due time."""

from __future__ import annotations


class FpsLimiter:
    """Admit at most ``fps`` frames a second, keeping the rate on a faster source.

    Frames are admitted by a schedule (``due`` advances by one period per
    admitted frame) rather than by the time since the last admitted frame: a
    frame arriving a little before its due time (up to a quarter period) is
    admitted, so the frame that arrives "exactly on time" with some jitter is
    not skipped. A 30 fps source limited to 15 fps gives 15 fps, a 29.97 fps
    one 14.99 fps. A source slower than the limit is not held back; after a gap
    longer than one period the schedule restarts from now (no burst to catch up).
    """

    def __init__(self, fps: float | None) -> None:
        """``fps``: frames per second at most; None or 0 admits every frame."""
        self.period = 1.0 / fps if fps else 0.0
        self.due: float | None = None

    def admit(self, now: float) -> bool:
        """True if a frame arriving at ``now`` (monotonic seconds) is to be processed."""
        if not self.period:
            return True
        if self.due is not None and now < self.due - self.period / 4:
            return False
        if self.due is None or now - self.due >= self.period:
            self.due = now + self.period
        else:
            self.due += self.period
        return True
