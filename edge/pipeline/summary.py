"""The summary of an offline run (``summary.json`` of ``edge-fer --video``, ``VideoAnalysis.summary``).

Typed once here; :meth:`RunSummary.to_dict` is the only place its JSON keys
are written, at the serialisation edge (``summary.json``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, fields
from typing import Any

from edge.types import EmotionEvent, TrackStats


@dataclass(frozen=True, slots=True)
class TrackSummary:
    """One ended track of a run: its id and whole-life statistics."""

    track_id: int
    stats: TrackStats

    @classmethod
    def from_event(cls, event: EmotionEvent) -> TrackSummary:
        """The track of a ``track_ended`` event.

        Raises:
            ValueError: the event carries no statistics (not a ``track_ended`` of the pipeline).
        """
        if event.stats is None:
            raise ValueError(f"{event.type} event of track {event.track_id} has no track statistics")
        return cls(event.track_id, event.stats)

    def to_dict(self) -> dict[str, Any]:
        """JSON object of ``summary.json``'s ``tracks`` (its documented key order)."""
        s = self.stats
        return {"track_id": self.track_id, "start_s": s.start_s, "end_s": s.end_s, "duration_s": s.duration_s,
                "dominant_emotion": s.dominant_emotion, "seconds_per_emotion": s.seconds_per_emotion,
                "mean_scores": s.mean_scores}


@dataclass(frozen=True, slots=True)
class RunSummary:
    """Run facts of one clip and its ended tracks.

    Attributes:
        input: The video path as given.
        frames: Frames decoded and processed.
        declared_frames: Frame count the container declares (0 when unknown).
        duration_s: Media duration processed, seconds (last timestamp plus one frame).
        face_rows: Rows of ``frames.csv`` (faces over all frames).
        events: Events emitted (``events.jsonl`` lines).
        processing_s: Wall-clock seconds from the first decode to the last output.
        processing_fps: ``frames / processing_s``.
        first_frame_s: Seconds from process start to the first processed frame.
        detect_every: The detector ran on every n-th frame.
        stage_ms_per_frame: {stage: mean milliseconds per frame} of the stages that ran
            (``detect``, ``track``, ``preprocess``, ``classify``, ``smooth``, ``write``, ``wait``),
            in the order they first ran.
        decoder_error: First line of the decoder's error; None when the clip decoded to its end.
        tracks: Ended tracks, by ``track_id``.
    """

    input: str
    frames: int
    declared_frames: int
    duration_s: float
    face_rows: int
    events: int
    processing_s: float
    processing_fps: float
    first_frame_s: float
    detect_every: int
    stage_ms_per_frame: dict[str, float]
    decoder_error: str | None
    tracks: tuple[TrackSummary, ...] = ()

    @staticmethod
    def tracks_of(ended: list[EmotionEvent]) -> tuple[TrackSummary, ...]:
        """The :class:`TrackSummary` of every ``track_ended`` event, sorted by ``track_id``."""
        return tuple(TrackSummary.from_event(e) for e in sorted(ended, key=lambda e: e.track_id))

    def to_dict(self) -> dict[str, Any]:
        """The JSON object of ``summary.json`` (keys in field order, ``tracks`` last)."""
        out = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "tracks"}
        out["tracks"] = [t.to_dict() for t in self.tracks]
        return out

    def to_json(self) -> str:
        """``summary.json``'s text: the JSON object indented by 2, with a final newline."""
        return json.dumps(self.to_dict(), indent=2) + "\n"

    def table(self) -> str:
        """The summary printed by ``edge-fer --video``: one line of run facts, then one line per track."""
        lines = [f"{self.input}: {self.frames} frames, {self.duration_s:.2f} s, {self.face_rows} face rows, "
                 f"{len(self.tracks)} tracks, {self.processing_fps:.1f} fps"]
        if self.tracks:
            lines.append(f"{'track':>5} {'start_s':>8} {'end_s':>8}  {'dominant':<9} seconds per emotion")
        for t in self.tracks:
            s = t.stats
            secs = ", ".join(f"{k} {v:.1f}" for k, v in s.seconds_per_emotion.items() if v > 0)
            lines.append(f"{t.track_id:>5} {s.start_s:>8.2f} {s.end_s:>8.2f}  {s.dominant_emotion:<9} {secs}")
        return "\n".join(lines)
