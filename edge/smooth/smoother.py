"""Time-based EMA of emotion scores with hysteresis, per track.

EMA on seconds, not frames: for a sample dt seconds after the previous one,
``alpha = 1 - exp(-dt / tau)`` (the exact discretisation of a first-order
low-pass with time constant tau), so the smoothing is the same at 5 or 30 fps.
Hysteresis: a new emotion becomes the track's current emotion only after its
smoothed score has led the current emotion's by at least ``switch_margin``
for ``min_hold_s`` seconds without interruption.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from edge.labels import EMOTIONS
from edge.types import EmotionScores

#: Defaults chosen on the labelled windows of the shared clips (``benchmarks/smoothing_windows.py``).
DEFAULT_TAU_S = 0.2
DEFAULT_MIN_HOLD_S = 0.5
DEFAULT_SWITCH_MARGIN = 0.3


@dataclass(frozen=True)
class SmoothingOptions:
    """Smoothing settings.

    Defaults (``benchmarks/smoothing_windows.py``, chosen on the labelled
    windows of the shared clips for both shipped label sets): a clean,
    full-confidence change is reported after ``tau_s * ln(2 / (1 -
    switch_margin)) + min_hold_s`` = 0.71 s; at most one change inside every
    labelled steady window. Macro-expressions last 0.5-4 s (Yan et al., 2013,
    "How fast are the leaked facial expressions", J. Nonverbal Behav.), so a
    0.5 s hold keeps them while classifier flicker and micro-expressions
    (< 0.5 s) are not reported.

    Attributes:
        tau_s: EMA time constant in seconds (0 disables smoothing).
        min_hold_s: Seconds a new leader must lead before it becomes current.
        switch_margin: Smoothed-score lead (probability, 0-1) a challenger
            needs over the current emotion to count as leading.
    """

    tau_s: float = DEFAULT_TAU_S
    min_hold_s: float = DEFAULT_MIN_HOLD_S
    switch_margin: float = DEFAULT_SWITCH_MARGIN


@dataclass
class TrackState:
    """Smoothing state and statistics of one track.

    Attributes:
        smoothed: float32 (7,) EMA scores.
        current: Current (hysteresis-filtered) emotion.
        pending, pending_since: Challenger emotion and the time (s) it started leading.
        last_s: Time of the latest sample (s); first_s: of the first.
        seconds: Seconds spent in each current emotion.
        score_sum, samples: For the mean raw scores.
    """

    smoothed: np.ndarray
    current: str
    first_s: float
    last_s: float
    pending: str | None = None
    pending_since: float = 0.0
    seconds: dict[str, float] = field(default_factory=lambda: {e: 0.0 for e in EMOTIONS})
    score_sum: np.ndarray = field(default_factory=lambda: np.zeros(len(EMOTIONS), np.float64))
    samples: int = 0

    @property
    def dominant(self) -> str:
        """Emotion with the most seconds (the current one if no time has passed)."""
        best = max(self.seconds, key=self.seconds.__getitem__)
        return best if self.seconds[best] > 0 else self.current

    @property
    def mean_scores(self) -> np.ndarray:
        """float32 (7,) mean of the raw scores."""
        return (self.score_sum / max(1, self.samples)).astype(np.float32)


class EmotionSmoother:
    """Keeps a :class:`TrackState` per track id."""

    def __init__(self, options: SmoothingOptions = SmoothingOptions(), labels: tuple[str, ...] = EMOTIONS) -> None:
        self.options = options
        self.labels = labels
        self.states: dict[int, TrackState] = {}

    def update(self, track_id: int, scores: EmotionScores, time_s: float) -> tuple[TrackState, str | None]:
        """Add one sample.

        Args:
            track_id: Track the scores belong to.
            scores: Raw classifier scores.
            time_s: Sample time in seconds (non-decreasing per track).

        Returns:
            (the track's state, previous emotion if the current one changed on this sample else None).
        """
        probs = scores.probs.astype(np.float32)
        state = self.states.get(track_id)
        if state is None:
            state = TrackState(probs.copy(), self.labels[int(np.argmax(probs))], time_s, time_s,
                               seconds={e: 0.0 for e in self.labels}, score_sum=np.zeros(len(probs), np.float64))
            self.states[track_id] = state
            self._account(state, probs, 0.0)
            return state, None
        dt = max(0.0, time_s - state.last_s)
        alpha = 1.0 if self.options.tau_s <= 0 else 1.0 - math.exp(-dt / self.options.tau_s)
        state.smoothed += np.float32(alpha) * (probs - state.smoothed)
        self._account(state, probs, dt)
        state.last_s = time_s
        return state, self._hysteresis(state, time_s)

    def _account(self, state: TrackState, probs: np.ndarray, dt: float) -> None:
        state.seconds[state.current] = state.seconds.get(state.current, 0.0) + dt
        state.score_sum += probs
        state.samples += 1

    def _hysteresis(self, state: TrackState, time_s: float) -> str | None:
        best = int(np.argmax(state.smoothed))
        leader = self.labels[best]
        current = self.labels.index(state.current)
        if leader == state.current or state.smoothed[best] - state.smoothed[current] < self.options.switch_margin:
            state.pending = None
            return None
        if leader != state.pending:
            state.pending, state.pending_since = leader, time_s
        if time_s - state.pending_since < self.options.min_hold_s:
            return None
        previous, state.current, state.pending = state.current, leader, None
        return previous

    def pop(self, track_id: int) -> TrackState | None:
        """Forget a track (it ended); returns its final state."""
        return self.states.pop(track_id, None)
