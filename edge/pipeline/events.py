"""Emotion events and their JSON schema (``events.jsonl`` and MQTT payloads).

Schema version 1. Every event has: ``schema_version``, ``type``
(``track_started`` | ``emotion_changed`` | ``track_ended``), ``ts`` (ISO-8601
UTC wall clock when produced), ``time_s`` (media time in seconds), ``source``,
``track_id``, ``emotion``, ``confidence`` (smoothed score of ``emotion``),
``scores`` (7 smoothed scores), ``bbox`` (x, y, w, h as fractions of the frame).
``emotion_changed`` adds ``previous_emotion``; ``track_ended`` adds
``start_s``, ``end_s``, ``duration_s``, ``dominant_emotion``, ``mean_scores``
and ``seconds_per_emotion``.

Countable: every event also carries ``boot_id`` (a UUID4 drawn once per
process, i.e. per daemon start or ``--video`` run) and ``seq`` (1, 2, 3, ...
over every event of that boot, across all sources, in the order they were
produced). A subscriber that keeps, per ``boot_id``, the set of ``seq`` seen
knows exactly which events it lost (gaps below the highest ``seq``) and which
arrived twice. State and status messages are not numbered.

A track left open by a crash is closed at the next daemon start by a
``track_ended`` event with ``reason: "restart"`` (:func:`restart_ended_dict`).
"""

from __future__ import annotations

import itertools
import threading
import uuid
from datetime import datetime, timezone
from typing import get_args

import numpy as np

from edge.smooth import TrackState
from edge.types import BBox, EmotionEvent, EventType, TrackStats

SCHEMA_VERSION = 1
EVENT_TYPES: tuple[EventType, ...] = get_args(EventType)


def utc_now_iso() -> str:
    """Current UTC time, ISO-8601 with milliseconds and ``Z``."""
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _scores(labels: tuple[str, ...], values: np.ndarray) -> dict[str, float]:
    return {name: round(float(v), 4) for name, v in zip(labels, values)}


def make_event(kind: EventType, state: TrackState, track_id: int, source: str, time_s: float, bbox: BBox,
               frame_size: tuple[int, int], labels: tuple[str, ...], *, previous_emotion: str | None = None,
               stats: TrackStats | None = None) -> EmotionEvent:
    """Build an event from a track's smoothing state.

    Args:
        kind: One of ``EVENT_TYPES``.
        state: The track's smoothing state (current emotion, smoothed scores).
        track_id: The track's id.
        source: Name of the source the frame came from.
        time_s: Media time of the frame in seconds (rounded to ms).
        bbox: The track's box in frame pixels.
        frame_size: (width, height) in pixels, to normalise ``bbox``.
        labels: Class names in the order of ``state.smoothed``.
        previous_emotion: ``emotion_changed``: the emotion before the change.
        stats: ``track_ended``: the track's whole-life statistics.

    Returns:
        The event, not yet numbered (``boot_id`` and ``seq`` are set by :class:`EventCounter`).
    """
    idx = labels.index(state.current)
    return EmotionEvent(kind, round(time_s, 3), source, track_id, state.current,
                        round(float(state.smoothed[idx]), 4), _scores(labels, state.smoothed),
                        bbox.normalised(*frame_size), previous_emotion=previous_emotion, stats=stats)


def track_stats(state: TrackState, labels: tuple[str, ...]) -> TrackStats:
    """The whole-life statistics of a track from its smoothing state (ms and 4-decimal rounding).

    Args:
        state: The ended track's smoothing state (first/last time, seconds per emotion, mean scores).
        labels: Class names in the order of ``state.mean_scores``.
    """
    return TrackStats(start_s=round(state.first_s, 3), end_s=round(state.last_s, 3),
                      duration_s=round(state.last_s - state.first_s, 3), dominant_emotion=state.dominant,
                      mean_scores=_scores(labels, state.mean_scores),
                      seconds_per_emotion={k: round(v, 3) for k, v in state.seconds.items()})


def track_ended_event(state: TrackState, track_id: int, source: str, bbox: BBox, frame_size: tuple[int, int],
                      labels: tuple[str, ...]) -> EmotionEvent:
    """``track_ended`` with the track's whole-life statistics (:func:`track_stats`)."""
    return make_event("track_ended", state, track_id, source, state.last_s, bbox, frame_size, labels,
                      stats=track_stats(state, labels))


class EventCounter:
    """The ``boot_id`` of this process and the next ``seq`` (thread-safe)."""

    def __init__(self, boot_id: str | None = None) -> None:
        """Start at ``seq`` 1 with a fresh UUID4 ``boot_id`` unless one is given."""
        self.boot_id = boot_id or str(uuid.uuid4())
        self._next = itertools.count(1)
        self._lock = threading.Lock()

    def next(self) -> int:
        """The next sequence number (1, 2, 3, ...)."""
        with self._lock:
            return next(self._next)

    def stamp(self, event: EmotionEvent) -> EmotionEvent:
        """Give ``event`` this boot's id and the next ``seq``, once (a stamped event keeps its number)."""
        with self._lock:
            if event.seq is None:
                event.boot_id, event.seq = self.boot_id, next(self._next)
        return event


#: The counter of this process: one boot per daemon start or ``--video`` run.
COUNTER = EventCounter()


def event_to_dict(event: EmotionEvent, ts: str | None = None, counter: EventCounter | None = None) -> dict:
    """The JSON object of an event (schema above); numbers the event (``boot_id``, ``seq``) if not yet done."""
    (counter or COUNTER).stamp(event)
    return {"schema_version": SCHEMA_VERSION, "type": event.type, "boot_id": event.boot_id, "seq": event.seq,
            "ts": ts or utc_now_iso(), "time_s": event.time_s, "source": event.source, "track_id": event.track_id,
            "emotion": event.emotion, "confidence": event.confidence, "scores": event.scores,
            "bbox": event.bbox, **event.extra}


def restart_ended_dict(previous_boot_id: str, source: str, track_id: int, start_s: float, last_s: float,
                       emotion: str | None, counter: EventCounter | None = None) -> dict:
    """``track_ended`` (``reason: "restart"``) for a track a crashed run left open.

    Args:
        previous_boot_id: ``boot_id`` of the run that started the track (its events carry it).
        source: Name of the track's source.
        track_id: The track's id in that run.
        start_s: Media time (seconds, of that run) of the track's first event.
        last_s: Media time (seconds, of that run) of the track's latest event.
        emotion: Its emotion at its latest event.
        counter: Numbers the event; the process-wide ``COUNTER`` when None.

    Returns:
        The event JSON object: numbered in this boot; ``confidence``, ``scores``,
        ``bbox`` and the whole-life statistics are unknown and null.
    """
    c = counter or COUNTER
    return {"schema_version": SCHEMA_VERSION, "type": "track_ended", "boot_id": c.boot_id, "seq": c.next(),
            "ts": utc_now_iso(), "time_s": round(last_s, 3), "source": source, "track_id": track_id,
            "emotion": emotion, "confidence": None, "scores": None, "bbox": None, "reason": "restart",
            "previous_boot_id": previous_boot_id, "start_s": round(start_s, 3), "end_s": round(last_s, 3),
            "duration_s": round(last_s - start_s, 3), "dominant_emotion": None, "mean_scores": None,
            "seconds_per_emotion": None}
