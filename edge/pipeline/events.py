"""Emotion events and their JSON schema (``events.jsonl`` and MQTT payloads).

Schema version 1. Every event has: ``schema_version``, ``type``
(``track_started`` | ``emotion_changed`` | ``track_ended``), ``ts`` (ISO-8601
UTC wall clock when produced), ``time_s`` (media time in seconds), ``source``,
``track_id``, ``emotion``, ``confidence`` (smoothed score of ``emotion``),
``scores`` (7 smoothed scores), ``bbox`` (x, y, w, h as fractions of the frame).
``emotion_changed`` adds ``previous_emotion``; ``track_ended`` adds
``start_s``, ``end_s``, ``duration_s``, ``dominant_emotion``, ``mean_scores``
and ``seconds_per_emotion``.
"""

from __future__ import annotations

from datetime import datetime, timezone

import numpy as np

from edge.smooth import TrackState
from edge.types import BBox, EmotionEvent

SCHEMA_VERSION = 1
EVENT_TYPES = ("track_started", "emotion_changed", "track_ended")


def utc_now_iso() -> str:
    """Current UTC time, ISO-8601 with milliseconds and ``Z``."""
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _scores(labels: tuple[str, ...], values: np.ndarray) -> dict[str, float]:
    return {name: round(float(v), 4) for name, v in zip(labels, values)}


def make_event(kind: str, state: TrackState, track_id: int, source: str, time_s: float, bbox: BBox,
               frame_size: tuple[int, int], labels: tuple[str, ...], **extra) -> EmotionEvent:
    """Build an event from a track's smoothing state.

    Args:
        kind: One of ``EVENT_TYPES``.
        state: The track's smoothing state (current emotion, smoothed scores).
        frame_size: (width, height) in pixels, to normalise ``bbox``.
        extra: Type-specific fields (e.g. ``previous_emotion``).
    """
    idx = labels.index(state.current)
    return EmotionEvent(kind, round(time_s, 3), source, track_id, state.current,
                        round(float(state.smoothed[idx]), 4), _scores(labels, state.smoothed),
                        bbox.normalised(*frame_size), extra)


def track_ended_event(state: TrackState, track_id: int, source: str, bbox: BBox, frame_size: tuple[int, int],
                      labels: tuple[str, ...]) -> EmotionEvent:
    """``track_ended`` with the track's whole-life statistics."""
    extra = {"start_s": round(state.first_s, 3), "end_s": round(state.last_s, 3),
             "duration_s": round(state.last_s - state.first_s, 3), "dominant_emotion": state.dominant,
             "mean_scores": _scores(labels, state.mean_scores),
             "seconds_per_emotion": {k: round(v, 3) for k, v in state.seconds.items()}}
    return make_event("track_ended", state, track_id, source, state.last_s, bbox, frame_size, labels, **extra)


def event_to_dict(event: EmotionEvent, ts: str | None = None) -> dict:
    """The JSON object of an event (schema above)."""
    return {"schema_version": SCHEMA_VERSION, "type": event.type, "ts": ts or utc_now_iso(),
            "time_s": event.time_s, "source": event.source, "track_id": event.track_id,
            "emotion": event.emotion, "confidence": event.confidence, "scores": event.scores,
            "bbox": event.bbox, **event.extra}
