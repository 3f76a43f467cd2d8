"""Per-stage wall-clock timing of the pipeline (seconds, ``time.perf_counter``).

Stages running in other threads (:mod:`edge.pipeline.parallel`) time
themselves into a per-frame :class:`FrameTimes`; the thread that finishes the
frame commits it to the shared :class:`StageTimer` in frame order, so
:attr:`StageTimer.last` always describes one frame and no two threads write
the timer.
"""

from __future__ import annotations

import os
import time
from collections import defaultdict


class _Span:
    """Context manager adding the body's seconds to one stage of a :class:`FrameTimes`."""

    __slots__ = ("_times", "_name", "_t0")

    def __init__(self, times: FrameTimes | StageTimer, name: str) -> None:
        self._times, self._name, self._t0 = times, name, 0.0

    def __enter__(self) -> None:
        self._t0 = time.perf_counter()

    def __exit__(self, *exc: object) -> None:
        self._times.add(self._name, time.perf_counter() - self._t0)


class FrameTimes:
    """Seconds per stage of one frame (filled by whichever thread ran the stage)."""

    __slots__ = ("seconds",)

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}

    def stage(self, name: str) -> _Span:
        """Time the body (``with times.stage("detect"): ...``) as stage ``name``."""
        return _Span(self, name)

    def add(self, name: str, seconds: float) -> None:
        """Add ``seconds`` to stage ``name`` of this frame."""
        self.seconds[name] = self.seconds.get(name, 0.0) + seconds


class StageTimer:
    """Accumulates seconds and calls per stage; ``last`` holds the latest frame's seconds.

    Not thread-safe: one thread (the one finishing frames) writes it.
    """

    def __init__(self) -> None:
        self.total: dict[str, float] = defaultdict(float)
        self.calls: dict[str, int] = defaultdict(int)
        self.last: dict[str, float] = {}

    def stage(self, name: str) -> _Span:
        """Time the body as stage ``name`` (a new call each time)."""
        return _Span(self, name)

    def begin_frame(self) -> None:
        """Start a new frame: ``last`` then holds only stages that ran on it."""
        self.last = {}

    def add(self, name: str, seconds: float) -> None:
        """Record ``seconds`` for stage ``name``."""
        self.total[name] += seconds
        self.calls[name] += 1
        self.last[name] = seconds

    def commit(self, times: FrameTimes) -> None:
        """Start a new frame and record every stage of ``times`` (one call per stage)."""
        self.begin_frame()
        for name, seconds in times.seconds.items():
            self.add(name, seconds)

    def mean_ms(self, per: int | None = None) -> dict[str, float]:
        """Mean milliseconds per call, or per ``per`` units (e.g. frames) when given."""
        return {k: 1000.0 * v / max(1, per if per else self.calls[k]) for k, v in self.total.items()}


def process_age_s() -> float | None:
    """Seconds since this process started; None where ``/proc`` is unavailable.

    ``/proc/self/stat`` start time against ``/proc/uptime``: 10 ms resolution, Linux.
    """
    try:
        with open("/proc/self/stat") as fh:
            start_ticks = int(fh.read().rsplit(")", 1)[1].split()[19])
        with open("/proc/uptime") as fh:
            uptime = float(fh.read().split()[0])
        return uptime - start_ticks / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return None
