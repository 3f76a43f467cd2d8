"""Per-stage wall-clock timing of the pipeline (seconds, ``time.perf_counter``)."""

from __future__ import annotations

import os
import time
from collections import defaultdict
from contextlib import contextmanager

STAGES = ("decode", "detect", "track", "preprocess", "classify", "smooth", "write")


class StageTimer:
    """Accumulates seconds and calls per stage; ``last`` holds the latest frame's seconds."""

    def __init__(self) -> None:
        self.total: dict[str, float] = defaultdict(float)
        self.calls: dict[str, int] = defaultdict(int)
        self.last: dict[str, float] = {}

    @contextmanager
    def stage(self, name: str):
        """Time the body as stage ``name``."""
        t0 = time.perf_counter()
        try:
            yield
        finally:
            self.add(name, time.perf_counter() - t0)

    def begin_frame(self) -> None:
        """Start a new frame: ``last`` then holds only stages that ran on it."""
        self.last = {}

    def add(self, name: str, seconds: float) -> None:
        """Record ``seconds`` for stage ``name``."""
        self.total[name] += seconds
        self.calls[name] += 1
        self.last[name] = seconds

    def mean_ms(self, per: int | None = None) -> dict[str, float]:
        """Mean milliseconds per call, or per ``per`` units (e.g. frames) when given."""
        return {k: 1000.0 * v / max(1, per if per else self.calls[k]) for k, v in self.total.items()}


def process_age_s() -> float | None:
    """Seconds since this process started (``/proc/self/stat`` start time vs ``/proc/uptime``,
    10 ms resolution; Linux). None where ``/proc`` is unavailable."""
    try:
        with open("/proc/self/stat") as fh:
            start_ticks = int(fh.read().rsplit(")", 1)[1].split()[19])
        with open("/proc/uptime") as fh:
            uptime = float(fh.read().split()[0])
        return uptime - start_ticks / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return None
