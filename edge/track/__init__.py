"""Face tracking across frames."""

from edge.track.tracker import IoUTracker, TrackerOptions

__all__ = ["IoUTracker", "TrackerOptions"]
