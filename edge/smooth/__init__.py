"""Per-track temporal smoothing of emotion scores and event generation."""

from edge.smooth.smoother import EmotionSmoother, SmoothingOptions, TrackState

__all__ = ["EmotionSmoother", "SmoothingOptions", "TrackState"]
