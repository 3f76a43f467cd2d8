"""Offline outputs: ``frames.csv``, ``events.jsonl``, ``summary.json``.

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


def build_summary(ended: list[EmotionEvent], run: dict) -> dict:
    """``summary.json``: run facts plus per-track seconds per emotion and dominant emotion.

    Args:
        ended: Every ``track_ended`` event of the run.
        run: Run-level facts (input, frames, duration, fps, timings ...).
    """
    tracks = [{"track_id": e.track_id, "start_s": e.extra["start_s"], "end_s": e.extra["end_s"],
               "duration_s": e.extra["duration_s"], "dominant_emotion": e.extra["dominant_emotion"],
               "seconds_per_emotion": e.extra["seconds_per_emotion"], "mean_scores": e.extra["mean_scores"]}
              for e in sorted(ended, key=lambda e: e.track_id)]
    return {**run, "tracks": tracks}


def format_summary(summary: dict) -> str:
    """The printed summary table (one line per track)."""
    lines = [f"{summary['input']}: {summary['frames']} frames, {summary['duration_s']:.2f} s, "
             f"{summary['face_rows']} face rows, {len(summary['tracks'])} tracks, "
             f"{summary['processing_fps']:.1f} fps"]
    if summary["tracks"]:
        lines.append(f"{'track':>5} {'start_s':>8} {'end_s':>8}  {'dominant':<9} seconds per emotion")
    for t in summary["tracks"]:
        secs = ", ".join(f"{k} {v:.1f}" for k, v in t["seconds_per_emotion"].items() if v > 0)
        lines.append(f"{t['track_id']:>5} {t['start_s']:>8.2f} {t['end_s']:>8.2f}  {t['dominant_emotion']:<9} {secs}")
    return "\n".join(lines)
