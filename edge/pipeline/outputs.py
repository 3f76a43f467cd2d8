"""Offline outputs: ``frames.csv`` and ``events.jsonl`` (``summary.json``: :mod:`edge.pipeline.summary`).

``frames.csv``: one row per face per frame; columns ``frame, time_s,
track_id, x, y, w, h`` (bbox in pixels), the raw probability of each of the
classifier's labels (its sidecar's ``labels``, e.g. the 7 FER2013 emotions, or 8
with ``contempt``), and ``emotion`` (the smoothed, hysteresis-filtered current
emotion).
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

from edge.pipeline.core import FrameResult
from edge.pipeline.events import event_to_dict
from edge.types import EmotionEvent


def frame_columns(labels: tuple[str, ...]) -> list[str]:
    """Header of ``frames.csv`` for a classifier with these labels."""
    return ["frame", "time_s", "track_id", "x", "y", "w", "h", *labels, "emotion"]


class FramesCsv:
    """Streams face rows to ``frames.csv`` (flushed every ``flush_every`` rows)."""

    def __init__(self, path: Path, labels: tuple[str, ...], flush_every: int = 200) -> None:
        """Create the file and write its header.

        Args:
            path: ``frames.csv`` path.
            labels: The classifier's labels (score columns, in model output order).
            flush_every: Rows between flushes.

        Raises:
            OSError: the file cannot be created.
        """
        self._fh = open(path, "w", newline="")
        self._writer = csv.writer(self._fh)
        self._writer.writerow(frame_columns(labels))
        self._pending = 0
        self.rows = 0
        self.flush_every = flush_every

    def write(self, result: FrameResult) -> None:
        """Append the rows of one frame."""
        for face in result.faces:
            b = face.bbox
            self._writer.writerow([result.frame_index, f"{result.time_s:.3f}", face.track_id,
                                   round(b.x, 1), round(b.y, 1), round(b.w, 1), round(b.h, 1),
                                   *(f"{p:.4f}" for p in face.scores.probs), face.emotion])
            self.rows += 1
            self._pending += 1
        if self._pending >= self.flush_every:
            self._fh.flush()
            self._pending = 0

    def close(self) -> None:
        """Flush and close."""
        self._fh.close()


class EventsJsonl:
    """Appends events to ``events.jsonl``, one JSON object per line, flushed per event."""

    def __init__(self, path: Path) -> None:
        self._fh = open(path, "w")
        self.count = 0

    def write(self, events: list[EmotionEvent]) -> None:
        """Append events."""
        for event in events:
            self._fh.write(json.dumps(event_to_dict(event)) + "\n")
            self.count += 1
        if events:
            self._fh.flush()

    def close(self) -> None:
        """Close the file."""
        self._fh.close()
