"""Typed values passed between the pipeline stages.

Units: bbox and keypoints in pixels of the frame they came from; times in
seconds; scores are probabilities in [0, 1] in ``edge.labels.EMOTIONS`` order.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any, Literal

import numpy as np

from edge.labels import EMOTIONS


@dataclass(frozen=True, slots=True)
class BBox:
    """Axis-aligned box: top-left corner (x, y), width w and height h, in pixels."""

    x: float
    y: float
    w: float
    h: float

    @property
    def area(self) -> float:
        """Area in square pixels (0 for degenerate boxes)."""
        return max(0.0, self.w) * max(0.0, self.h)

    def iou(self, other: BBox) -> float:
        """Intersection over union with ``other``, in [0, 1]."""
        ix = max(0.0, min(self.x + self.w, other.x + other.w) - max(self.x, other.x))
        iy = max(0.0, min(self.y + self.h, other.y + other.h) - max(self.y, other.y))
        inter = ix * iy
        union = self.area + other.area - inter
        return inter / union if union > 0 else 0.0

    def clipped(self, width: int, height: int) -> BBox:
        """This box clipped to a width x height frame."""
        x0, y0 = min(max(self.x, 0.0), width), min(max(self.y, 0.0), height)
        x1, y1 = min(max(self.x + self.w, 0.0), width), min(max(self.y + self.h, 0.0), height)
        return BBox(x0, y0, x1 - x0, y1 - y0)

    def normalised(self, width: int, height: int) -> dict[str, float]:
        """Box as fractions of the frame size (x, w over width; y, h over height), 4 decimals."""
        return {"x": round(self.x / width, 4), "y": round(self.y / height, 4),
                "w": round(self.w / width, 4), "h": round(self.h / height, 4)}

    def as_tuple(self) -> tuple[float, float, float, float]:
        """(x, y, w, h) in pixels."""
        return (self.x, self.y, self.w, self.h)


@dataclass(slots=True)
class Frame:
    """One decoded frame.

    Attributes:
        index: 0-based frame number within its source.
        time_s: Presentation time in seconds (container timestamp for files,
            monotonic capture time for live sources).
        image: uint8 BGR array (H, W, 3).
        source: Name of the source that produced it.
    """

    index: int
    time_s: float
    image: np.ndarray
    source: str = "video"

    @property
    def width(self) -> int:
        """Image width in pixels."""
        return int(self.image.shape[1])

    @property
    def height(self) -> int:
        """Image height in pixels."""
        return int(self.image.shape[0])


@dataclass(frozen=True, slots=True)
class Detection:
    """A detected face.

    Attributes:
        bbox: Face box in frame pixels.
        score: Detector confidence in [0, 1].
        keypoints: float32 (6, 2) BlazeFace keypoints in frame pixels, in
            MediaPipe order: right eye, left eye, nose tip, mouth centre,
            right ear tragion, left ear tragion (the subject's right/left).
    """

    bbox: BBox
    score: float
    keypoints: np.ndarray

    @property
    def eyes(self) -> tuple[tuple[float, float], tuple[float, float]]:
        """((x, y), (x, y)) of the eyes, the one with the smaller x first."""
        a, b = (tuple(map(float, self.keypoints[i])) for i in (0, 1))
        return (a, b) if a[0] <= b[0] else (b, a)  # type: ignore[return-value]


@dataclass(slots=True)
class EmotionScores:
    """Per-face class probabilities.

    Attributes:
        probs: float32 (7,) probabilities summing to ~1, ``EMOTIONS`` order.
    """

    probs: np.ndarray
    labels: tuple[str, ...] = EMOTIONS

    @property
    def top(self) -> str:
        """Label of the highest score."""
        return self.labels[int(np.argmax(self.probs))]

    @property
    def confidence(self) -> float:
        """The highest score."""
        return float(np.max(self.probs))

    def as_dict(self, digits: int = 4) -> dict[str, float]:
        """{label: score} rounded to ``digits``."""
        return {name: round(float(p), digits) for name, p in zip(self.labels, self.probs)}


@dataclass(slots=True)
class Track:
    """A face followed across frames.

    Attributes:
        track_id: Stable id, unique within a run.
        bbox: Latest box in pixels (detected, or carried between detections).
        hits: Number of detections matched to this track.
        misses: Consecutive detection rounds without a match.
        first_s, last_s: Times of the first and latest matched detection, in seconds.
        confirmed: True once ``hits`` reached the tracker's ``min_hits``.
        detection: Latest matched detection (keypoints for alignment).
        velocity: Estimated centre velocity (vx, vy) in pixels per second.
    """

    track_id: int
    bbox: BBox
    first_s: float
    last_s: float
    hits: int = 1
    misses: int = 0
    confirmed: bool = False
    detection: Detection | None = None
    velocity: tuple[float, float] = (0.0, 0.0)


@dataclass(slots=True)
class TrackedFace:
    """A track and the face box it has in the current frame (detected or carried)."""

    track: Track
    detection: Detection


@dataclass(slots=True)
class FaceResult:
    """One face in one frame after classification and smoothing."""

    track_id: int
    bbox: BBox
    scores: EmotionScores
    smoothed: EmotionScores
    emotion: str


#: The three event types (README "Event JSON").
EventType = Literal["track_started", "emotion_changed", "track_ended"]


@dataclass(frozen=True, slots=True)
class TrackStats:
    """Whole-life statistics of a track, carried by its ``track_ended`` event.

    Times in seconds of media time, rounded to ms; scores rounded to 4 decimals.

    Attributes:
        start_s: Time of the track's first smoothed frame.
        end_s: Time of its last smoothed frame.
        duration_s: ``end_s - start_s``.
        dominant_emotion: The emotion it held for the most seconds.
        mean_scores: {label: mean smoothed probability in [0, 1]}, in the classifier's label order.
        seconds_per_emotion: {label: seconds that emotion was the current one}, every label.
    """

    start_s: float
    end_s: float
    duration_s: float
    dominant_emotion: str
    mean_scores: dict[str, float]
    seconds_per_emotion: dict[str, float]

    def to_dict(self) -> dict[str, Any]:
        """The ``track_ended`` JSON fields, in field order (the dicts are shared, not copied)."""
        return {f.name: getattr(self, f.name) for f in fields(self)}


@dataclass(slots=True)
class EmotionEvent:
    """An event about a track: ``track_started``, ``emotion_changed`` or ``track_ended``.

    Attributes:
        time_s: Media time in seconds; bbox: fractions of the frame size.
        previous_emotion: ``emotion_changed`` only: the emotion before the change.
        stats: ``track_ended`` only: the track's whole-life statistics.
        boot_id, seq: Set once when the event is first serialised
            (:func:`edge.pipeline.events.event_to_dict`): the run's UUID and the
            event's number, 1, 2, 3, ... over every event of that run.
    """

    type: EventType
    time_s: float
    source: str
    track_id: int
    emotion: str
    confidence: float
    scores: dict[str, float]
    bbox: dict[str, float]
    previous_emotion: str | None = None
    stats: TrackStats | None = None
    boot_id: str | None = None
    seq: int | None = None

    @property
    def extra(self) -> dict[str, Any]:
        """The type-specific JSON fields (``previous_emotion``, or the :class:`TrackStats`), for serialisers."""
        out: dict[str, Any] = {} if self.previous_emotion is None else {"previous_emotion": self.previous_emotion}
        if self.stats is not None:
            out.update(self.stats.to_dict())
        return out
