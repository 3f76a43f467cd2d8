"""Typed run summary and track-end statistics: the JSON they serialise to keeps its documented keys and order."""

import dataclasses
import json

import pytest

from conftest import run_edge_fer
from edge.pipeline.events import EventCounter, restart_ended_dict
from edge.pipeline.summary import RunSummary, TrackSummary
from edge.types import EmotionEvent, TrackStats

#: README "Offline outputs": the run facts of ``summary.json``, in file order, then ``tracks``.
SUMMARY_KEYS = ["input", "frames", "declared_frames", "duration_s", "face_rows", "events", "processing_s",
                "processing_fps", "first_frame_s", "detect_every", "stage_ms_per_frame", "decoder_error", "tracks"]
#: README: per track of ``summary.json``.
TRACK_KEYS = ["track_id", "start_s", "end_s", "duration_s", "dominant_emotion", "seconds_per_emotion", "mean_scores"]
#: README "Event JSON": the fields every event has, in file order.
EVENT_KEYS = ["schema_version", "type", "boot_id", "seq", "ts", "time_s", "source", "track_id", "emotion",
              "confidence", "scores", "bbox"]
#: README "Event JSON": what ``track_ended`` adds, in file order.
ENDED_KEYS = ["start_s", "end_s", "duration_s", "dominant_emotion", "mean_scores", "seconds_per_emotion"]


def _stats(start_s: float = 1.0, end_s: float = 3.5, dominant: str = "happy") -> TrackStats:
    return TrackStats(start_s, end_s, round(end_s - start_s, 3), dominant, {"happy": 0.7, "sad": 0.3},
                      {"happy": 2.0, "sad": 0.5})


def _event(kind, track_id: int, stats: TrackStats | None = None) -> EmotionEvent:
    return EmotionEvent(kind, 3.5, "cam0", track_id, "happy", 0.9, {"happy": 0.9, "sad": 0.1},
                        {"x": 0.1, "y": 0.1, "w": 0.2, "h": 0.2}, stats=stats)


def _summary(tracks: tuple[TrackSummary, ...]) -> RunSummary:
    return RunSummary(input="clip.mp4", frames=100, declared_frames=100, duration_s=3.333, face_rows=95, events=4,
                      processing_s=0.5, processing_fps=200.0, first_frame_s=0.4, detect_every=1,
                      stage_ms_per_frame={"detect": 1.5, "classify": 0.3}, decoder_error=None, tracks=tracks)


def test_summary_serialises_in_the_documented_key_order_with_tracks_by_id():
    ended = [_event("track_ended", 7, _stats(dominant="sad")), _event("track_ended", 2, _stats())]
    d = _summary(RunSummary.tracks_of(ended)).to_dict()
    assert list(d) == SUMMARY_KEYS
    assert [list(t) for t in d["tracks"]] == [TRACK_KEYS, TRACK_KEYS]
    assert [(t["track_id"], t["dominant_emotion"]) for t in d["tracks"]] == [(2, "happy"), (7, "sad")]
    assert d["tracks"][0]["seconds_per_emotion"] == {"happy": 2.0, "sad": 0.5}


def test_values_are_frozen_and_a_track_needs_its_statistics():
    summary = _summary(())
    with pytest.raises(dataclasses.FrozenInstanceError):
        summary.frames = 3  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        _stats().end_s = 9.0  # type: ignore[misc]
    with pytest.raises(ValueError, match="track_started event of track 4 has no track statistics"):
        TrackSummary.from_event(_event("track_started", 4))
    assert summary.table() == "clip.mp4: 100 frames, 3.33 s, 95 face rows, 0 tracks, 200.0 fps"


def test_event_extra_holds_only_its_type_fields():
    assert _event("track_started", 1).extra == {}
    changed = dataclasses.replace(_event("emotion_changed", 1), previous_emotion="sad")
    assert changed.extra == {"previous_emotion": "sad"}
    assert list(_event("track_ended", 1, _stats()).extra) == ENDED_KEYS


def test_a_restart_track_ended_has_the_same_statistics_keys():
    d = restart_ended_dict("old-boot", "cam0", 4, 1.0, 3.5, "happy", EventCounter("b"))
    keys = list(d)
    assert keys[keys.index("start_s"):] == [f.name for f in dataclasses.fields(TrackStats)] == ENDED_KEYS


@pytest.mark.integration
def test_a_real_run_writes_the_typed_summary_and_events_as_documented(d19, tmp_path):
    """``edge-fer --video`` on a real clip: summary.json and events.jsonl keep their keys, order and values."""
    out = tmp_path / "out"
    res = run_edge_fer("--video", str(d19), "--out", str(out), "--no-progress")
    assert res.returncode == 0, res.stderr
    text = (out / "summary.json").read_text()
    summary = json.loads(text)
    assert text == json.dumps(summary, indent=2) + "\n" and list(summary) == SUMMARY_KEYS
    events = [json.loads(line) for line in (out / "events.jsonl").read_text().splitlines()]
    assert [e["type"] for e in events] == ["track_started", "emotion_changed", "track_ended"]  # neutral -> happy
    assert [list(e) for e in events] == [EVENT_KEYS, EVENT_KEYS + ["previous_emotion"], EVENT_KEYS + ENDED_KEYS]
    ended = events[-1]
    assert ended["duration_s"] == round(ended["end_s"] - ended["start_s"], 3) > 8.0
    assert [list(t) for t in summary["tracks"]] == [TRACK_KEYS]
    assert summary["tracks"] == [{k: ended[k] for k in TRACK_KEYS}]  # the track_ended statistics, reordered
    assert (summary["frames"], summary["events"], summary["decoder_error"]) == (250, 3, None)
    # the printed table is the one built from the typed summary
    rebuilt = RunSummary(**{**summary, "tracks": tuple(
        TrackSummary(t["track_id"], TrackStats(**{k: t[k] for k in ENDED_KEYS})) for t in summary["tracks"])})
    assert rebuilt.to_json() == text
    assert rebuilt.table() in res.stdout and f"{ended['track_id']:>5}" in res.stdout
