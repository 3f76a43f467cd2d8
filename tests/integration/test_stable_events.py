"""Stable events end to end: the default model and smoothing on the labelled windows of the shared clips.

The windows are ``benchmarks/clip_windows.csv`` (transcribed from the clips'
``manifest.csv``). ``edge-fer --video`` runs with its defaults; its
``events.jsonl`` and ``frames.csv`` are read back.
"""

import csv
import json
import sys

import pytest

from conftest import ROOT, run_edge_fer

sys.path.insert(0, str(ROOT))
from benchmarks.smoothing_windows import read_windows  # noqa: E402

pytestmark = pytest.mark.integration
WINDOWS = read_windows()


def _run(videos, clip, tmp_path):
    out = tmp_path / clip
    res = run_edge_fer("--video", str(videos / clip), "--out", str(out), "--no-progress")
    assert res.returncode == 0, res.stderr[-2000:]
    events = [json.loads(line) for line in (out / "events.jsonl").read_text().splitlines()]
    rows = list(csv.DictReader(open(out / "frames.csv")))
    main = max({int(r["track_id"]) for r in rows}, key=lambda t: sum(int(r["track_id"]) == t for r in rows))
    return [e for e in events if e["track_id"] == main], [r for r in rows if int(r["track_id"]) == main]


@pytest.mark.parametrize("clip", sorted({w.file for w in WINDOWS}))
def test_at_most_one_emotion_change_inside_any_labelled_window(videos, clip, tmp_path):
    events, rows = _run(videos, clip, tmp_path)
    assert len(rows) > 150  # the face is tracked through the clip
    for w in (w for w in WINDOWS if w.file == clip):
        changes = [e for e in events if e["type"] == "emotion_changed" and w.start_s <= e["time_s"] <= w.end_s]
        assert len(changes) <= 1, (w, [(e["time_s"], e["emotion"]) for e in changes])


def test_steady_neutral_window_of_d19_is_neutral_for_most_frames(videos, tmp_path):
    _, rows = _run(videos, "liveportrait_d19.mp4", tmp_path)
    window = [r for r in rows if float(r["time_s"]) <= 4.7]
    assert sum(r["emotion"] == "neutral" for r in window) > 0.8 * len(window)
